"""The per-batch folds of the metrics against plain per-value reference implementations, over random
inputs that aim at the edges: NaN of either sign, ±inf, ±0, values equal to an edge or a bound and the
float32 neighbours just below and above it (np.nextafter).

`BucketFolder.counts` (input drift, shared with training) and `HistogramCell.observe_many` (the predicted
probability histogram) fold a whole batch with numpy; they must count exactly what one comparison per
value counts: bucket i of a drift column holds edges[i-1] < v <= edges[i] (NaN: missing), a histogram
bucket the values v <= its bound (`le`, NaN in none), and the histogram's sum is the float64 sum."""

from __future__ import annotations

import math
from bisect import bisect_left

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from service.drift import BucketFolder
from service.metrics import PROBABILITY_BUCKETS, HistogramCell

PROPERTY = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NEGATIVE_NAN = np.array([0xFFC00000], dtype=np.uint32).view(np.float32)[0]  # NaN with the sign bit set
FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


def _near(points: list[float]) -> list[float]:
    """Each point as a float32, and the float32 values just below and just above it."""
    near = []
    with np.errstate(over="ignore"):  # the neighbour of the largest float32 is inf
        for point in points:
            value = np.float32(point)
            near += [value, np.nextafter(value, np.float32(-np.inf)), np.nextafter(value, np.float32(np.inf))]
    return [float(value) for value in near]


def _values(points: list[float]) -> st.SearchStrategy[float]:
    special = [math.nan, float(NEGATIVE_NAN), math.inf, -math.inf, 0.0, -0.0, *_near(points)]
    return st.sampled_from(special) | FLOAT32


def _float32(values: list[float]) -> np.ndarray:
    """float32 values keeping NaN's sign bit (np.array of Python floats would too, asserted here)."""
    array = np.array(values, dtype=np.float32)
    assert all(bool(np.signbit(a)) == (math.copysign(1, v) < 0) for a, v in zip(array, values, strict=True))
    return array


@st.composite
def folder_cases(draw: st.DrawFn) -> tuple[list[list[float]], np.ndarray]:
    columns = draw(st.integers(1, 5))
    edges = [sorted({float(np.float32(e)) for e in draw(st.lists(FLOAT32, max_size=6))}) for _ in range(columns)]
    rows = draw(st.integers(0, 40))
    every_edge = [edge for column in edges for edge in column]
    values = [draw(_values(every_edge)) for _ in range(rows * columns)]
    return edges, _float32(values).reshape(rows, columns)


def reference_counts(edges: list[list[float]], values: np.ndarray, slots: int) -> list[int]:
    counts = [0] * (len(edges) * slots)
    for row in values.tolist():
        for column, value in enumerate(row):
            bucket = slots - 1 if math.isnan(value) else sum(1 for edge in edges[column] if edge < value)
            counts[column * slots + bucket] += 1
    return counts


@PROPERTY
@given(case=folder_cases())
def test_folder_counts_like_one_comparison_per_value(case: tuple[list[list[float]], np.ndarray]) -> None:
    edges, values = case
    before = values.copy()
    folder = BucketFolder(edges)
    counts = folder.counts(values)
    assert counts.dtype == np.int64
    assert counts.tolist() == reference_counts(edges, values, folder.slots)
    assert np.array_equal(values, before, equal_nan=True)  # the caller's matrix is not sorted in place
    # A single column's transpose is contiguous already: it must be copied too, not sorted in place.
    single = np.ascontiguousarray(values[:, :1])
    BucketFolder(edges[:1]).counts(single)
    assert np.array_equal(single, before[:, :1], equal_nan=True)


def test_folder_with_no_rows_or_no_columns() -> None:
    folder = BucketFolder([[1.0, 2.0], []])
    assert folder.counts(np.empty((0, 2), dtype=np.float32)).tolist() == [0] * (2 * folder.slots)
    assert BucketFolder([]).counts(np.empty((3, 0), dtype=np.float32)).tolist() == []
    assert folder.counts(np.array([[np.nan, 5.0]], dtype=np.float32)).tolist() == [0, 0, 0, 1, 1, 0, 0, 0]


@st.composite
def histogram_cases(draw: st.DrawFn) -> tuple[tuple[float, ...], list[float]]:
    bounds = draw(
        st.sampled_from([PROBABILITY_BUCKETS])
        | st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=6, unique=True).map(
            lambda drawn: tuple(sorted(set(drawn)))
        )
    )
    values = draw(st.lists(_values(list(bounds)), min_size=2, max_size=60))
    return bounds, values


def _histogram(bounds: tuple[float, ...]) -> HistogramCell:
    return HistogramCell(Histogram("h", "h", ["m"], buckets=bounds, registry=CollectorRegistry()).labels("x"))


@PROPERTY
@given(case=histogram_cases(), as_float64=st.booleans())
def test_observe_many_buckets_like_observe_per_value(
    case: tuple[tuple[float, ...], list[float]], as_float64: bool
) -> None:
    """float32 scores (the models' outputs) and float64 arrays alike; the bounds of drawn histograms are
    float64 values that mostly no float32 equals, so a float32 just below or above one must still land
    where Python's `value <= bound` puts it."""
    bounds, values = case
    array = _float32(values)
    if as_float64:
        array = array.astype(np.float64)
    cell = _histogram(bounds)
    with np.errstate(invalid="ignore"):  # inf + -inf in the sum
        cell.observe_many(array)
        total = float(np.asarray(array, dtype=np.float64).sum())  # the float64 sum, as before the float32 path
    upper = [*bounds, math.inf]
    expected = [0] * len(upper)
    for value in array.tolist():
        if not math.isnan(value):  # NaN is in no bucket (its sum is NaN)
            expected[bisect_left(upper, value)] += 1
    assert [bucket.get() for bucket in cell._buckets] == expected
    assert cell._sum.get() == total or (math.isnan(total) and math.isnan(cell._sum.get()))


def test_observe_many_sums_float32_as_float64_at_every_size() -> None:
    """Summing float32 with a float64 accumulator equals summing their float64 copy, past numpy's
    8192-element buffer too."""
    rng = np.random.default_rng(7)
    for size in (2, 1000, 8192, 8193, 50_000):
        scores = rng.random(size, dtype=np.float32)
        cell = _histogram(PROBABILITY_BUCKETS)
        cell.observe_many(scores)
        assert cell._sum.get() == float(scores.astype(np.float64).sum()), size
        assert sum(bucket.get() for bucket in cell._buckets) == size
