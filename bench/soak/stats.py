"""Pure figures of a soak: latency percentiles, memory growth after warm-up, error totals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PERCENTILES = (50.0, 95.0, 99.0)


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least p % of the values at or below
    it) of values sorted ascending; None for no values."""
    if not sorted_values:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99 and max in milliseconds."""
    ordered = sorted(latencies_s)
    summary: dict[str, float | None] = {}
    for p in PERCENTILES:
        value = percentile(ordered, p)
        summary[f"p{p:g}"] = None if value is None else value * 1e3
    summary["max"] = ordered[-1] * 1e3 if ordered else None
    return summary


@dataclass(frozen=True)
class Growth:
    """One worker's resident memory: at the warm-up mark, at the end, the peak, and the growth."""

    baseline_kb: int
    baseline_at_s: float
    final_kb: int
    final_at_s: float
    peak_kb: int

    @property
    def growth_percent(self) -> float:
        return (self.final_kb - self.baseline_kb) / self.baseline_kb * 100


def memory_growth(samples: Sequence[tuple[float, int]], warmup_s: float) -> Growth | None:
    """Growth of one process's RSS from the first sample at or after `warmup_s` to the last sample.

    `samples` are (seconds since the load started, RSS in kB), in time order. None if no sample lies
    at or after the warm-up mark, or if the baseline is the last sample (nothing to compare).
    """
    after = [(t, kb) for t, kb in samples if t >= warmup_s]
    if len(after) < 2:
        return None
    (t0, kb0), (t1, kb1) = after[0], after[-1]
    if kb0 <= 0:
        return None
    return Growth(kb0, t0, kb1, t1, max(kb for _, kb in samples))


def warmup_seconds(duration_s: float, share: float = 0.15, cap_s: float = 10.0) -> float:
    """Where the memory baseline is taken: `share` of the run, at most `cap_s` seconds in."""
    return min(duration_s * share, cap_s)
