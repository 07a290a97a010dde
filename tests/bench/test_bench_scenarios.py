"""Re-measuring a scenario that other processes disturbed, keeping the least disturbed run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import scenarios
from bench.scenarios import LoadSettings, Scenario, ScenarioResult, run_scenario

SERVER = SimpleNamespace(port=1)
SCENARIO = Scenario("heart", "POST /predict/heart", "POST", "/predict/heart", b"{}")
BASE = ScenarioResult(
    name="heart",
    title="t",
    server="service",
    method="POST",
    path="/predict/heart",
    rows_per_request=1,
    body_bytes=2,
    requests=1000,
    duration_s=10.0,
    requests_per_s=100.0,
    rows_per_s=100.0,
    latency_ms={},
    errors={},
    server_cpu_s=10.0,
    wrk_cpu_s=1.0,
    other_cpu_s=0.0,
)


def fake_runs(monkeypatch: pytest.MonkeyPatch, other_cpu: list[float]) -> list[str]:
    """`measure` returns results whose other-CPU seconds come from `other_cpu`, in order."""
    names: list[str] = []
    monkeypatch.setattr(scenarios, "http_request", lambda *_a, **_k: (200, b"{}"))

    measured = iter(other_cpu)

    def measure(*args: Any) -> ScenarioResult:
        names.append(args[-1])
        other = 0.0 if args[-1].endswith("-warmup") else next(measured)
        return replace(BASE, other_cpu_s=other, requests_per_s=float(len(names)))

    monkeypatch.setattr(scenarios, "measure", measure)
    return names


@pytest.mark.parametrize(
    ("other_cpu", "runs", "kept"),
    [
        ([0.5], 1, 1),  # quiet at once: one measured run
        ([5.0, 0.2], 2, 2),  # disturbed, then quiet
        ([5.0, 3.0, 4.0], 3, 2),  # disturbed every time: the least disturbed is kept
    ],
)
def test_a_disturbed_run_is_measured_again(
    monkeypatch: pytest.MonkeyPatch, other_cpu: list[float], runs: int, kept: int
) -> None:
    names = fake_runs(monkeypatch, other_cpu)
    settings = LoadSettings(duration_s=10, warmup_s=1, quiet_wait_s=0, busy_retries=2)
    result = run_scenario("wrk", SERVER, SCENARIO, settings, Path())  # type: ignore[arg-type]
    assert names == ["heart-warmup", "heart", "heart-retry1", "heart-retry2"][: runs + 1]
    assert result.attempts == runs
    assert result.requests_per_s == kept + 1  # the warm-up was call 1
    assert result.busy == (min(other_cpu) > 1.0)


def test_no_retries_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    names = fake_runs(monkeypatch, [5.0, 5.0])
    settings = LoadSettings(duration_s=10, warmup_s=0, quiet_wait_s=0, busy_retries=0)
    result = run_scenario("wrk", SERVER, SCENARIO, settings, Path())  # type: ignore[arg-type]
    assert names == ["heart"]
    assert result.busy
    assert result.attempts == 1
