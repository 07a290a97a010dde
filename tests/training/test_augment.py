"""The digits' training-time redrawing: counts as the service makes them, labels kept, views picked."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import SVC

from service.contract import DIGIT_MAX_VALUE
from service.image import image_to_pixels
from training.augment import Redraw, add_serifs, ink_density, pick_view, redraw_digits, with_views
from training.data import load_digits_data


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits_data()
    return data.X, data.y


def test_views_are_ink_counts_deterministic_per_seed(digits) -> None:
    X, _ = digits
    views = redraw_digits(X[:50], Redraw(views=3), seed=7)
    assert views.shape == (50, 3, 64)
    assert views.min() >= 0 and views.max() <= DIGIT_MAX_VALUE
    assert np.array_equal(views, np.round(views))  # whole counts, as service.image makes them
    assert np.array_equal(views, redraw_digits(X[:50], Redraw(views=3), seed=7))
    assert not np.array_equal(views, redraw_digits(X[:50], Redraw(views=3), seed=8))
    assert not np.array_equal(views[:, 0], views[:, 1])  # each view is drawn anew


def test_an_undistorted_redraw_is_what_the_service_makes_of_the_same_picture(digits) -> None:
    # No rotation, slant, stretch or random ink level: the redrawn counts must be the service's
    # conversion of the upsampled digit shown as a grey picture (dark ink on white). The identity warp
    # resamples in float32, so a bitmap pixel lying exactly at the ink threshold may flip: a few counts.
    X, _ = digits
    identity = Redraw(
        views=1, rotation=0.0, shear=0.0, aspect=0.0, scale=0.0, ink_levels=(0.5, 0.5), foot=0.0, flag=0.0
    )
    redrawn = redraw_digits(X[:20], identity, seed=0)[:, 0]
    pictures = ink_density(X[:20])[:, 0].numpy().astype(np.float64)
    served = np.stack([image_to_pixels(255.0 * (1.0 - picture / picture.max())) for picture in pictures])
    assert (redrawn == served).mean() > 0.97
    assert np.abs(redrawn - served).sum(axis=1).max() <= 8  # of up to 1,024 ink pixels per digit


def test_redrawn_digits_keep_their_label(digits) -> None:
    # A classifier that never saw a redrawn digit still reads most of them: the distortions change
    # how a digit looks, not which digit it is.
    X, y = digits
    svc = SVC(C=10.0, gamma=0.1).fit(X[:1200] / DIGIT_MAX_VALUE, y[:1200])
    views = redraw_digits(X[1200:1500], Redraw(views=2, foot=0.0, flag=0.0), seed=0)
    for view in range(2):
        assert (svc.predict(views[:, view] / DIGIT_MAX_VALUE) == y[1200:1500]).mean() > 0.7
    assert (svc.predict(X[1200:1500] / DIGIT_MAX_VALUE) == y[1200:1500]).mean() > 0.95


def test_with_views_puts_the_digit_as_written_first(digits) -> None:
    X, _ = digits
    stacked = with_views(X[:10], Redraw(views=2), seed=0)
    assert stacked.shape == (10, 3, 64) and stacked.dtype == np.float32
    assert np.array_equal(stacked[:, 0], X[:10])
    assert np.array_equal(with_views(X[:10], Redraw(views=0), seed=0)[:, 0], X[:10])


def test_pick_view_takes_one_whole_view_per_digit() -> None:
    batch = torch.arange(4, dtype=torch.float32).reshape(1, 4, 1).expand(500, 4, 64).clone()  # view k is all k
    picked = pick_view(batch, torch.Generator().manual_seed(0), max_shift=0)
    assert picked.shape == (500, 64)
    assert torch.equal(picked.min(dim=1).values, picked.max(dim=1).values)  # never a mix of views
    assert set(picked[:, 0].tolist()) == {0.0, 1.0, 2.0, 3.0}  # every view is used


@pytest.mark.parametrize("serif", ["foot", "flag"])
def test_serifs_only_add_ink_at_the_digits_ends(digits, serif: str) -> None:
    X, _ = digits
    density = ink_density(X[:100])
    redraw = Redraw(foot=1.0 if serif == "foot" else 0.0, flag=1.0 if serif == "flag" else 0.0)
    drawn = add_serifs(density, redraw, torch.Generator().manual_seed(0))
    assert torch.all(drawn >= density)  # strokes are added, never removed
    for before, after in zip(density[:, 0].numpy(), drawn[:, 0].numpy(), strict=True):
        rows = np.flatnonzero((before >= 0.5 * before.max()).any(axis=1))
        added_rows, added_cols = np.nonzero(after > before)
        assert len(added_rows) > 0  # every digit got one
        if serif == "foot":  # under the lowest stroke end: within the bottom rows of the ink, not below
            assert added_rows.min() >= rows[-1] - redraw.serif_rows[1] and added_rows.max() <= rows[-1]
        else:  # from the highest stroke end downwards, to the left of where it starts
            top_cols = np.flatnonzero((before[rows[0] : rows[0] + 4] >= 0.5 * before.max()).any(axis=0))
            assert added_rows.min() >= rows[0] and added_cols.max() <= top_cols.mean() + redraw.serif_rows[1]
