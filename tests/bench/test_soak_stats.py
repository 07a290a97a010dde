"""The soak's pure figures: percentiles, memory growth after warm-up, where warm-up ends."""

from __future__ import annotations

import pytest

from bench.soak.stats import latency_summary, memory_growth, percentile, warmup_seconds


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 50) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0  # the smallest value with at least half at or below it
    assert percentile([1.0, 2.0], 51) == 2.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="not in"):
        percentile(values, 0)


def test_latency_summary_is_in_milliseconds_whatever_the_order() -> None:
    summary = latency_summary([0.003, 0.001, 0.002, 0.010])
    assert summary == {"p50": 2.0, "p95": 10.0, "p99": 10.0, "max": 10.0}
    assert latency_summary([]) == {"p50": None, "p95": None, "p99": None, "max": None}


def test_growth_from_the_first_sample_after_warmup_to_the_last() -> None:
    samples = [(0.0, 50_000), (1.0, 100_000), (9.5, 100_000), (10.0, 102_000), (30.0, 101_000), (60.0, 104_040)]
    growth = memory_growth(samples, warmup_s=10.0)
    assert growth is not None
    assert (growth.baseline_kb, growth.baseline_at_s) == (102_000, 10.0)
    assert (growth.final_kb, growth.final_at_s) == (104_040, 60.0)
    assert growth.peak_kb == 104_040
    assert growth.growth_percent == pytest.approx(2.0)


def test_shrinking_memory_is_negative_growth_and_the_peak_covers_warmup() -> None:
    growth = memory_growth([(0.0, 200_000), (5.0, 100_000), (6.0, 90_000)], warmup_s=5.0)
    assert growth is not None
    assert growth.growth_percent == pytest.approx(-10.0)
    assert growth.peak_kb == 200_000


def test_no_growth_without_two_samples_after_warmup() -> None:
    assert memory_growth([], 1.0) is None
    assert memory_growth([(0.0, 1), (2.0, 5)], warmup_s=1.0) is None
    assert memory_growth([(0.0, 1), (0.5, 5)], warmup_s=1.0) is None


def test_warmup_is_a_share_of_the_run_capped() -> None:
    assert warmup_seconds(10.0) == pytest.approx(1.5)
    assert warmup_seconds(60.0) == pytest.approx(9.0)
    assert warmup_seconds(3600.0) == 10.0
