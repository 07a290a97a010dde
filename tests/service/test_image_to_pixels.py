"""The grey image → 8×8 ink counts conversion (service.image): exact cases and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.image import MIN_CONTRAST, STROKE_SHARE, BlankImageError, image_to_pixels, ink_mask, to_bitmap


def bar_image(height: int = 32, width: int = 32, bar: tuple[int, int] = (10, 22), ink: int = 255) -> np.ndarray:
    image = np.full((height, width), 255 - ink, dtype=float)
    image[:, bar[0] : bar[1]] = ink
    return image


def test_a_vertical_bar_fills_the_middle_columns() -> None:
    counts = image_to_pixels(bar_image()).reshape(8, 8)
    # the 32×12 bar keeps its size, centred at columns 10..21 of the 32×32 bitmap
    assert (counts == np.array([0, 0, 8, 16, 16, 8, 0, 0])).all()


def test_dark_ink_on_light_paper_reads_the_same() -> None:
    assert (image_to_pixels(bar_image(ink=0)) == image_to_pixels(bar_image(ink=255))).all()


def test_the_drawing_is_cropped_scaled_and_centred() -> None:
    """A small square in a corner of a large canvas becomes a 32×32 block filling the grid."""
    canvas = np.zeros((300, 200))
    canvas[10:40, 150:180] = 255
    assert (image_to_pixels(canvas) == 16).all()


def test_aspect_ratio_is_kept() -> None:
    """A wide, flat bar stays wide and flat (scaled to the full width, centred vertically)."""
    canvas = np.zeros((64, 64))
    canvas[30:34, 0:64] = 200
    counts = image_to_pixels(canvas).reshape(8, 8)
    assert (counts.sum(axis=1)[[0, 1, 6, 7]] == 0).all()
    assert counts.sum() > 0


@pytest.mark.parametrize("level", [0, 128, 255])
def test_a_uniform_image_is_blank(level: int) -> None:
    with pytest.raises(BlankImageError, match="no ink"):
        image_to_pixels(np.full((20, 20), level, dtype=float))


def test_too_little_contrast_is_blank() -> None:
    image = np.full((20, 20), 100.0)
    image[5:15, 5:15] = 100 + MIN_CONTRAST - 1
    with pytest.raises(BlankImageError):
        image_to_pixels(image)
    image[5:15, 5:15] = 100 + MIN_CONTRAST
    assert image_to_pixels(image).sum() > 0


def test_a_thin_stroke_survives_scaling_down_and_is_thickened() -> None:
    """A 1-pixel diagonal in a 400×400 image would vanish under a half-coverage rule."""
    image = np.zeros((400, 400))
    index = np.arange(20, 380)
    image[index, index] = 255
    bitmap = to_bitmap(ink_mask(image))
    assert bitmap.mean() >= STROKE_SHARE
    assert bitmap[0, 0] and bitmap[-1, -1] and not bitmap[0, -1]  # still the same diagonal


# Properties -----------------------------------------------------------------------------------

sides = st.integers(min_value=8, max_value=24)
grey_images = st.tuples(sides, sides).flatmap(
    lambda shape: arrays(np.int64, shape, elements=st.integers(min_value=0, max_value=255))
)


@st.composite
def drawings(draw: st.DrawFn) -> np.ndarray:
    """A random stroke pattern in one grey level on a background of another, inside a margin."""
    height, width = draw(sides), draw(sides)
    background = draw(st.integers(0, 255))
    ink = draw(st.integers(0, 255).filter(lambda level: abs(level - background) >= MIN_CONTRAST))
    mask = draw(arrays(np.bool_, (height - 2, width - 2)))
    assume(mask.any())
    image = np.full((height, width), background, dtype=np.int64)
    image[1:-1, 1:-1][mask] = ink
    return image


def _polarity_is_ambiguous(image: np.ndarray) -> bool:
    """Ink as far above the background as below it: no rule can tell which is ink."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    background = float(np.median(border))
    return image.max() - background == background - image.min()


@hypothesis_settings(max_examples=200, deadline=None)
@given(grey_images)
def test_output_is_64_counts_from_0_to_16_or_blank(image: np.ndarray) -> None:
    try:
        counts = image_to_pixels(image)
    except BlankImageError:
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        background = float(np.median(border))
        assert max(image.max() - background, background - image.min()) < MIN_CONTRAST
        return
    assert counts.shape == (64,)
    assert np.issubdtype(counts.dtype, np.integer)
    assert counts.min() >= 0 and counts.max() <= 16
    assert counts.sum() > 0


@hypothesis_settings(max_examples=200, deadline=None)
@given(drawings() | grey_images)
def test_inverting_the_ink_colour_changes_nothing(image: np.ndarray) -> None:
    assume(not _polarity_is_ambiguous(image))
    try:
        counts = image_to_pixels(image)
    except BlankImageError:
        with pytest.raises(BlankImageError):
            image_to_pixels(255 - image)
        return
    assert (image_to_pixels(255 - image) == counts).all()


@hypothesis_settings(max_examples=150, deadline=None)
@given(drawings() | grey_images, st.integers(min_value=2, max_value=5))
def test_scaling_the_drawing_up_changes_nothing(image: np.ndarray, factor: int) -> None:
    bigger = np.kron(image, np.ones((factor, factor), dtype=np.int64))
    assume(bigger.shape[0] <= 512 and bigger.shape[1] <= 512)
    try:
        counts = image_to_pixels(image)
    except BlankImageError:
        with pytest.raises(BlankImageError):
            image_to_pixels(bigger)
        return
    assert (image_to_pixels(bigger) == counts).all()
