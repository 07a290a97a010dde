"""The folded heart network computes the trained ensemble's function, missing values included, in torch
and as exported to onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from service.contract import HEART_FEATURES
from training.data import load_cleveland
from training.export import check_parity, export_onnx, onnx_probabilities, torch_probabilities
from training.fuse import FusedTabularEnsemble, UnfoldableModelError
from training.models import HeartMLP, LogitEnsemble, TabularEncoder
from training.preprocess import HeartPreprocessor


def _ensemble(X: np.ndarray, hidden: tuple[int, ...] = (8,), members: int = 3) -> LogitEnsemble:
    """Members with their own encoder statistics (fitted on different rows) and random weights: the
    folding must hold for any weights, not only for trained ones."""
    torch.manual_seed(7)
    parts = np.array_split(np.random.default_rng(7).permutation(len(X)), members)
    nets = [HeartMLP(TabularEncoder.from_preprocessor(HeartPreprocessor().fit(X[p])), hidden) for p in parts]
    for net in nets:  # biases away from zero, so a wrongly folded bias cannot hide
        for layer in net.net:
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.normal_(layer.bias, std=0.5)
    return LogitEnsemble(nets).eval()


@pytest.fixture(scope="module")
def heart_rows() -> np.ndarray:
    """Cleveland's rows with random cells blanked in every column, and rows missing everything."""
    X = load_cleveland().X.astype(np.float32)
    rng = np.random.default_rng(0)
    blanked = X.copy()
    blanked[rng.random(X.shape) < 0.3] = np.nan
    nothing = np.full((3, X.shape[1]), np.nan, dtype=np.float32)
    return np.concatenate([X, blanked, nothing])


def test_folded_network_equals_the_ensemble_in_torch(heart_rows: np.ndarray) -> None:
    ensemble = _ensemble(heart_rows[:303])
    fused = FusedTabularEnsemble.from_ensemble(ensemble).eval()
    with torch.no_grad():
        expected = ensemble(torch.as_tensor(heart_rows)).numpy()
        actual = fused(torch.as_tensor(heart_rows)).numpy()
    assert np.isfinite(actual).all()
    np.testing.assert_allclose(actual, expected, atol=2e-5)
    assert fused.hidden.out_features == 3 * 8


def test_folded_export_passes_parity_with_the_trained_ensemble(tmp_path: Path, heart_rows: np.ndarray) -> None:
    ensemble = _ensemble(heart_rows[:303])
    path = export_onnx(FusedTabularEnsemble.from_ensemble(ensemble), heart_rows, tmp_path / "m.onnx", "x", "p")
    assert check_parity(ensemble, path, heart_rows, "rows") <= 1e-5
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Div" not in ops and "Sub" not in ops  # standardisation lives in the weights now
    # And a one-off row (batch of one) agrees too.
    np.testing.assert_allclose(
        onnx_probabilities(path, heart_rows[-1:]), torch_probabilities(ensemble, heart_rows[-1:]), atol=1e-5
    )


def test_a_changed_weight_breaks_parity(tmp_path: Path, heart_rows: np.ndarray) -> None:
    """The parity check would catch a folding mistake: perturb one folded weight and it fails."""
    ensemble = _ensemble(heart_rows[:303])
    fused = FusedTabularEnsemble.from_ensemble(ensemble)
    with torch.no_grad():
        fused.hidden.weight[0, 2 * len(HEART_FEATURES)] += 1.0  # the first one-hot code's weight, unit 0
    path = export_onnx(fused, heart_rows, tmp_path / "m.onnx", "x", "p")
    with pytest.raises(RuntimeError, match="differs from torch"):
        check_parity(ensemble, path, heart_rows, "rows")


def test_deeper_members_are_refused_by_name(heart_rows: np.ndarray) -> None:
    with pytest.raises(UnfoldableModelError, match="3 linear layers"):
        FusedTabularEnsemble.from_ensemble(_ensemble(heart_rows[:303], hidden=(8, 4)))


def test_a_rows_answer_does_not_depend_on_its_batch(tmp_path: Path, heart_rows: np.ndarray) -> None:
    """Bit for bit: the service micro-batches single requests, and a patient's probability must be the same
    whoever else was in the batch."""
    path = export_onnx(
        FusedTabularEnsemble.from_ensemble(_ensemble(heart_rows[:303])), heart_rows, tmp_path / "m.onnx", "x", "p"
    )
    together = onnx_probabilities(path, heart_rows)
    for size in (1, 2, 3, 7, 32):
        parts = [onnx_probabilities(path, heart_rows[i : i + size]) for i in range(0, len(heart_rows), size)]
        assert np.array_equal(np.concatenate(parts), together), size
