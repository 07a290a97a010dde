"""The training loop's guarantees (determinism, early stopping) and ONNX parity."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import HeartConfig, OptimConfig, RunConfig, small
from training.data import load_cleveland, load_digits_data
from training.digits import fit_digits
from training.engine import fit
from training.export import ExportParityError, check_parity, export_onnx
from training.heart import fit_heart

SMALL = small(RunConfig())


@pytest.fixture(scope="module")
def heart_xy() -> tuple[np.ndarray, np.ndarray]:
    data = load_cleveland()
    return data.X, data.y


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_heart_training_is_bit_identical_for_a_seed(heart_xy) -> None:
    X, y = heart_xy
    first = fit_heart(X, y, SMALL.heart, seed=3)
    second = fit_heart(X, y, SMALL.heart, seed=3)
    other = fit_heart(X, y, SMALL.heart, seed=4)
    assert states_equal(first.model, second.model)
    assert [h.val_loss for h in first.histories] == [h.val_loss for h in second.histories]
    assert not states_equal(first.model, other.model)


def test_digits_training_is_bit_identical_for_a_seed() -> None:
    data = load_digits_data()
    config = replace(SMALL.digits, optim=replace(SMALL.digits.optim, max_epochs=2))
    first = fit_digits(data.X[:400], data.y[:400], config, seed=1)
    second = fit_digits(data.X[:400], data.y[:400], config, seed=1)
    assert states_equal(first.model, second.model)


def test_early_stopping_restores_the_best_epoch() -> None:
    # Random labels: the validation loss bottoms out early and then rises as the net memorises.
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(200, 20)), dtype=torch.float32)
    y = torch.as_tensor(rng.integers(0, 2, 200))
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1), torch.nn.Flatten(0))
    config = OptimConfig(lr=1e-2, weight_decay=0.0, batch_size=16, max_epochs=100, warmup_epochs=1, patience=5)
    history = fit(model, (x[:150], y[:150]), (x[150:], y[150:]), config, seed=0)
    assert len(history.val_loss) < config.max_epochs  # it stopped
    assert len(history.val_loss) == history.best_epoch + 1 + config.patience
    with torch.no_grad():
        kept = torch.nn.functional.binary_cross_entropy_with_logits(model(x[150:]), y[150:].float()).item()
    assert kept == pytest.approx(min(history.val_loss), rel=1e-5)


def test_onnx_export_agrees_with_torch_and_a_mismatch_is_caught(heart_xy, tmp_path: Path) -> None:
    X, y = heart_xy
    config: HeartConfig = replace(SMALL.heart, ensemble=2)
    fitted = fit_heart(X, y, config, seed=0)
    path = export_onnx(fitted.model, X, tmp_path / "model.onnx", "features", "probability")
    with_missing = X.copy()
    with_missing[::2, -1] = np.nan
    with_missing[::3, 4] = np.nan
    assert check_parity(fitted.model, path, with_missing, "rows") <= 1e-5
    # No build-machine paths (they made the checksum, and so the version name, depend on the checkout).
    checkout = str(Path(__file__).resolve().parents[2]).encode()
    assert checkout not in path.read_bytes()
    assert b"pkg.torch.onnx.stack_trace" not in path.read_bytes()
    with torch.no_grad():
        fitted.model.members[0].net[0].bias.add_(0.5)  # the file on disk no longer matches the model
    with pytest.raises(ExportParityError, match=r"model\.onnx"):
        check_parity(fitted.model, path, X, "rows")
