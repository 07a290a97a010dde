"""Preprocessing is fitted on training rows only, and the torch encoder is the same arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.contract import HEART_FEATURE_NAMES, HEART_FEATURES
from training.data import load_cleveland
from training.heart import NULLABLE_COLUMNS, mask_missing
from training.models import DigitsCNN, TabularEncoder, random_shift
from training.preprocess import HeartPreprocessor, stratified_split

CHOL = HEART_FEATURE_NAMES.index("chol")


@pytest.fixture(scope="module")
def heart_xy() -> tuple[np.ndarray, np.ndarray]:
    data = load_cleveland()
    return data.X, data.y


def test_fit_returns_self_and_learns_from_the_rows_given_only(heart_xy) -> None:
    X, y = heart_xy
    train, held_out = stratified_split(y, 0.2, seed=0)
    poisoned = X.copy()
    poisoned[held_out, CHOL] = 700.0  # anything learned from held-out rows would move the chol statistics
    pre = HeartPreprocessor()
    assert pre.fit(poisoned[train]) is pre
    chol_position = list(pre.numeric_columns_).index(CHOL)
    assert pre.medians_[chol_position] == pytest.approx(np.nanmedian(X[train, CHOL]))
    assert pre.means_[chol_position] == pytest.approx(np.nanmean(X[train, CHOL]), rel=1e-3)
    assert pre.means_[chol_position] != pytest.approx(np.nanmean(poisoned[:, CHOL]), rel=1e-3)


def test_transform_imputes_flags_and_one_hot_encodes(heart_xy) -> None:
    X, _ = heart_xy
    pre = HeartPreprocessor().fit(X)
    row = X[:1].copy()
    row[0, CHOL] = np.nan
    row[0, HEART_FEATURE_NAMES.index("thal")] = np.nan
    out = pre.transform(row)
    names = list(pre.get_feature_names_out())
    assert out.shape == (1, pre.n_features_out_) == (1, len(names))
    chol_z = out[0, names.index("chol")]
    assert chol_z == pytest.approx(
        (pre.medians_[list(pre.numeric_columns_).index(CHOL)] - pre.means_[list(pre.numeric_columns_).index(CHOL)])
        / pre.scales_[list(pre.numeric_columns_).index(CHOL)],
        abs=1e-5,
    )
    assert out[0, names.index("chol_missing")] == 1.0
    assert out[0, names.index("thal=normal")] == out[0, names.index("thal=fixed")] == 0.0
    assert out[0, names.index("thal=reversible")] == 0.0


def test_torch_encoder_matches_numpy_transform(heart_xy) -> None:
    X, _ = heart_xy
    pre = HeartPreprocessor().fit(X[:200])
    noisy = X.copy()
    rng = np.random.default_rng(0)
    noisy[rng.random(noisy.shape) < 0.2] = np.nan
    encoded = TabularEncoder.from_preprocessor(pre)(torch.as_tensor(noisy)).numpy()
    np.testing.assert_allclose(encoded, pre.transform(noisy), atol=1e-5)


def test_missing_mask_blanks_nullable_columns_only() -> None:
    x = torch.ones((500, len(HEART_FEATURES)))
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(mask_missing(0.0)(x, generator), x)
    all_masked = mask_missing(1.0)(x, generator)
    nullable = torch.zeros(len(HEART_FEATURES), dtype=torch.bool)
    nullable[NULLABLE_COLUMNS] = True
    assert torch.isnan(all_masked[:, nullable]).all()
    assert not torch.isnan(all_masked[:, ~nullable]).any()
    some = mask_missing(0.3)(x, generator)
    assert 0.25 < torch.isnan(some[:, nullable]).float().mean().item() < 0.35


def test_random_shift_moves_ink_without_losing_it() -> None:
    image = torch.zeros((64, 8, 8))
    image[:, 3:5, 3:5] = 16.0  # a centred blob: a one-pixel shift cannot push it off the grid
    flat = image.reshape(64, 64)
    generator = torch.Generator().manual_seed(0)
    shifted = random_shift(flat, generator, max_shift=1)
    assert torch.equal(shifted.sum(dim=1), flat.sum(dim=1))
    assert (shifted != flat).any(dim=1).sum() > 30  # 8 of 9 offsets move it
    assert torch.equal(random_shift(flat, generator, max_shift=0), flat)


def test_digits_cnn_takes_raw_counts() -> None:
    logits = DigitsCNN(channels=(4, 8), hidden=16)(torch.full((3, 64), 16.0))
    assert logits.shape == (3, 10)
