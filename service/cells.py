"""Cells: updates of one labelled prometheus_client child without the library's per-call checks.

Looked up once per model version (service.metrics.ModelMetrics) and per route (service.http_metrics); a
batch's per-row observations fold with numpy into one increment per bucket or label. prometheus_client only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np


class CounterCell:
    """`inc` on one labelled child without prometheus_client's per-call checks.

    A child's `inc`/`observe` re-checks on every call that it is a labelled child and that the
    amount is not negative; those checks cost more than the increment itself (≈ 0.45 µs per `inc`,
    ≈ 1 µs per `observe`, and a single prediction makes about ten). The checks hold once the child
    exists and the amounts are counts and durations, so the cells update the child's value objects
    (`_value`, `_buckets`, `_sum`: what `inc`/`observe` update themselves, in memory or in the
    multiprocess files alike) directly.
    """

    __slots__ = ("_value",)

    def __init__(self, child: Any) -> None:
        child._raise_if_not_observable()
        self._value = child._value

    def inc(self, amount: float = 1) -> None:
        self._value.inc(amount)

    def dec(self, amount: float = 1) -> None:  # gauges
        self._value.inc(-amount)


class HistogramCell:
    """`observe` on one labelled histogram child: a bisection over the bounds and two increments."""

    __slots__ = ("_bounds", "_bounds32", "_bounds64", "_buckets", "_sum")

    def __init__(self, child: Any) -> None:
        child._raise_if_not_observable()
        self._bounds = [float(bound) for bound in child._upper_bounds]  # the last one is +Inf
        self._buckets = list(child._buckets)  # per-bucket (non-cumulative) counts, as observe keeps them
        self._sum = child._sum
        # Float32 values are bucketed against each bound rounded down to a float32: for a float32 v, v <= bound
        # exactly when v <= that float32, so no float64 copy and the bucket Python's comparison would choose.
        self._bounds64 = np.array(self._bounds)
        with np.errstate(over="ignore"):  # a bound past the float32 range becomes inf, then the largest float32
            nearest = self._bounds64.astype(np.float32)
            self._bounds32 = np.where(nearest > self._bounds64, np.nextafter(nearest, np.float32(-np.inf)), nearest)

    def observe(self, value: float) -> None:
        # `le` semantics: the first bucket whose bound is >= value, as Histogram.observe chooses it.
        self._buckets[bisect_left(self._bounds, value)].inc(1)
        self._sum.inc(value)

    def observe_many(self, values: Any) -> None:
        """Every value of an array, with one increment per bucket instead of one per value."""
        values = np.asarray(values).reshape(-1)
        f32 = values.dtype == np.float32
        values, bounds = (values, self._bounds32) if f32 else (values.astype(np.float64, copy=False), self._bounds64)
        if values.size == 0:
            return
        if values.size == 1:
            self.observe(float(values[0]))
            return
        # `le`: the first bound >= the value; NaN lands past the last bucket, uncounted, as before. The sum
        # is float64 either way (numpy widens each float32 as it adds). Measured on a 1000-row heart batch:
        # 15-24 → 11-19 µs against a float64 copy searched in the bounds list (timeit, same run).
        counts = np.bincount(bounds.searchsorted(values, side="left"), minlength=len(self._bounds))
        for bucket, count in zip(self._buckets, counts.tolist(), strict=False):
            if count:
                bucket.inc(count)
        self._sum.inc(float(values.sum(dtype=np.float64)))


def inc_counts(cells: Sequence[CounterCell], counts: Any) -> None:
    """Add counts[i] to cells[i] (label or field counts folded with numpy)."""
    for cell, count in zip(cells, counts.tolist(), strict=True):
        if count:
            cell.inc(count)
