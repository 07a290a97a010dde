"""Ratios, targets and the files a run writes, from made-up scenario results (no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import exit_status
from bench.report import build_report, busy_warning, evaluate_targets, render_markdown, target_values, write_report
from bench.scenarios import ScenarioResult, check_response, service_scenarios, tutorial_scenarios
from bench.wrk import WrkError


def result(name: str, rps: float, rows: int = 1, errors: int = 0) -> ScenarioResult:
    return ScenarioResult(
        name=name,
        title=f"title of {name}",
        server="tutorial" if name.startswith("tutorial") else "service",
        method="POST",
        path=f"/{name}",
        rows_per_request=rows,
        body_bytes=10,
        requests=int(rps * 10),
        duration_s=10.0,
        requests_per_s=rps,
        rows_per_s=rps * rows,
        latency_ms={
            "min": 0.1,
            "mean": 1.0,
            "max": 9.0,
            "stdev": 0.5,
            "p50": 1.0,
            "p75": 1.5,
            "p90": 2.0,
            "p95": 2.5,
            "p99": 3.0,
            "p999": 8.0,
        },
        errors={"connect": 0, "read": 0, "write": 0, "status": errors, "timeout": 0},
        server_cpu_s=9.5,
        wrk_cpu_s=3.0,
        other_cpu_s=0.2,
    )


RESULTS = [
    result("health", 20_000),
    result("heart", 12_000),
    result("digit", 11_000),
    result("heart_batch", 300, rows=1000),
    result("digit_batch", 200, rows=1000),
    result("tutorial_heart", 250),
    result("heart_explain", 120),
]
MACHINE = {
    "cpu_model": "AMD EPYC",
    "cpu_count": 2,
    "cpus_usable": 2,
    "memory_gb": 23.5,
    "kernel": "6",
    "os": "Linux",
    "python": "3.11.7",
    "packages": {"litestar": "2.25.0", "granian": None},
    "wrk": "wrk 4.1.0",
    "git_commit": "abc1234",
}
SETTINGS = {
    "duration_s": 10.0,
    "warmup_s": 2.0,
    "connections": 32,
    "threads": 1,
    "batch_rows": 1000,
    "service_command": "python -m service",
    "service_env": [],
    "load_generator": "wrk",
}


def test_target_values_are_the_issue_ratios() -> None:
    values = target_values({r.name: r for r in RESULTS}, ready_s=1.5, worker_rss_mb=120.0)
    assert values == {
        "heart_over_health": pytest.approx(0.6),
        "heart_over_tutorial": pytest.approx(48.0),
        "heart_batch_rows_per_s": pytest.approx(300_000),
        "heart_explain_p50_ms": 1.0,
        "heart_explained_per_s": 120,
        "worker_rss_mb": 120.0,
        "ready_s": 1.5,
    }


def test_targets_pass_miss_and_unmeasured() -> None:
    values = {
        "heart_over_health": 0.44,
        "heart_over_tutorial": 30.0,
        "heart_batch_rows_per_s": None,
        "heart_explain_p50_ms": 15.5,
        "heart_explained_per_s": 100.0,
        "worker_rss_mb": 201.0,
        "ready_s": 2.9,
    }
    verdicts = {t["name"]: t["passed"] for t in evaluate_targets(values)}
    assert verdicts == {
        "heart_over_health": False,
        "heart_over_tutorial": True,
        "heart_batch_rows_per_s": None,
        "heart_explain_p50_ms": False,
        "heart_explained_per_s": True,
        "worker_rss_mb": False,
        "ready_s": True,
    }


def test_a_missing_scenario_leaves_its_ratio_unmeasured() -> None:
    values = target_values({r.name: r for r in RESULTS if r.name != "tutorial_heart"}, None, None)
    assert values["heart_over_tutorial"] is None
    assert values["ready_s"] is None


def test_report_files_and_markdown(tmp_path: Path) -> None:
    service = {
        "ready_s": 1.25,
        "memory_after": {"worker_rss_mb": 150.0, "worker_peak_rss_mb": 160.0, "tree_rss_mb": 150.0, "workers": 1.0},
    }
    report = build_report(
        RESULTS,
        settings=SETTINGS,
        machine=MACHINE,
        service=service,
        tutorial={"ready_s": 3.5, "memory_after": {"worker_rss_mb": 360.0}},
        artifacts={"heart": "v1", "digits": "v2"},
    )
    json_path, md_path = write_report(report, tmp_path / "run", tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["machine"]["cpu_model"] == "AMD EPYC"
    assert [s["name"] for s in saved["scenarios"]] == [r.name for r in RESULTS]
    assert all(t["passed"] for t in saved["targets"])
    assert (tmp_path / "latest.json").read_text() == json_path.read_text()
    markdown = md_path.read_text()
    assert markdown == (tmp_path / "latest.md").read_text() == render_markdown(report)
    assert "| title of heart_batch | service | 300 | 300,000 | 1.00 | 2.50 | 3.00 | 0 | 95% | 30% | 2% |" in markdown
    assert "| single heart rps / GET /health/live rps | 0.60 | ≥ 0.50 | met |" in markdown
    assert "| service worker RSS after the benchmark | 150 MB | ≤ 200 MB | met |" in markdown
    assert "AMD EPYC, 2 cores" in markdown
    assert "granian" not in markdown  # packages that are not installed are left out
    assert "Warning" not in markdown


def test_failures_are_reported_and_fail_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    service = {"ready_s": 1.0, "failures": {"digit_batch": "POST /predict/digit/batch: the server answered 404"}}
    report = build_report(RESULTS[:4], settings=SETTINGS, machine=MACHINE, service=service, tutorial={}, artifacts={})
    markdown = render_markdown(report)
    assert "## Failures" in markdown
    assert "- **service / digit_batch**: POST /predict/digit/batch: the server answered 404" in markdown
    assert exit_status(report, strict=False) == 1
    assert "service: digit_batch failed" in capsys.readouterr().err


def test_exit_status_of_a_clean_run() -> None:
    report = build_report(
        RESULTS, settings=SETTINGS, machine=MACHINE, service={"ready_s": 9.0}, tutorial={}, artifacts={}
    )
    assert exit_status(report, strict=False) == 0
    assert exit_status(report, strict=True) == 1  # ready in 9 s misses the 3 s target
    failed = build_report(
        [result("heart", 100, errors=3)], settings=SETTINGS, machine=MACHINE, service={}, tutorial={}, artifacts={}
    )
    assert exit_status(failed, strict=False) == 1


def test_a_busy_machine_is_flagged() -> None:
    busy = [{**r.to_dict(), "other_cpu_s": 5.0} if r.name == "heart" else r.to_dict() for r in RESULTS]
    (line,) = [line for line in busy_warning(busy) if line]
    assert "busy with other work during title of heart:" in line


def test_scenarios_cover_the_issue() -> None:
    from bench.payloads import Payloads

    payloads = Payloads(
        heart_one=b"{}",
        digit_one=b"{}",
        heart_batch=b"[]",
        digit_batch=b"[]",
        heart_version="v1",
        digits_version="v2",
        batch_rows=1000,
    )
    scenarios = service_scenarios(payloads)
    assert [(s.method, s.path, s.rows) for s in scenarios] == [
        ("GET", "/health/live", 1),
        ("POST", "/predict/heart", 1),
        ("POST", "/predict/digit", 1),
        ("POST", "/predict/heart?explain=true", 1),
        ("POST", "/predict/heart/batch", 1000),
        ("POST", "/predict/digit/batch", 1000),
    ]
    (tutorial,) = tutorial_scenarios(payloads)
    assert (tutorial.path, tutorial.body) == ("/predict/heart", payloads.heart_one)


def test_v2_scenarios_send_the_same_heart_rows(small_artifacts: Path) -> None:
    from bench.payloads import build_payloads

    payloads = build_payloads(small_artifacts, batch_rows=7)
    v2 = {s.name: s for s in service_scenarios(payloads) if s.path == "/v2/models/heart/infer"}
    assert sorted(v2) == ["v2_heart", "v2_heart_batch", "v2_heart_batch_binary", "v2_heart_binary"]
    batch = json.loads(v2["v2_heart_batch"].body or b"")
    assert v2["v2_heart_batch"].rows == 7
    assert {tensor["name"]: tensor["shape"] for tensor in batch["inputs"]}["age"] == [7, 1]
    answer = {"outputs": [{"name": "probability", "shape": [7], "datatype": "FP32", "data": [0.5] * 7}]}
    check_response(v2["v2_heart_batch"], 200, json.dumps(answer).encode())
    with pytest.raises(WrkError, match="7 rows"):
        check_response(v2["v2_heart_batch"], 200, json.dumps({"outputs": [{"shape": [6]}]}).encode())


def test_a_route_that_answers_wrongly_is_not_benchmarked() -> None:
    from bench.scenarios import Scenario

    batch = Scenario("b", "batch", "POST", "/b", b"{}", rows=3)
    check_response(batch, 200, json.dumps({"predictions": [{}, {}, {}]}).encode())
    with pytest.raises(WrkError, match="422"):
        check_response(batch, 422, b'{"detail": "bad"}')
    with pytest.raises(WrkError, match="expected 3 predictions, got 2"):
        check_response(batch, 200, json.dumps({"predictions": [{}, {}]}).encode())
