"""The soak of `make soak`, 10 seconds of it: 64 clients mixing single and batch predictions of both
models against `python -m service` with 2 workers, a hot reload every 2 s between two real versions
of each model. Asserts correctness only (no failed request, reloads that succeed and reach every
worker, both workers answering, figures produced): speed and memory are figures, printed by
`make soak`, never asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.soak.report import build_report, write_report
from bench.soak.run import SoakSettings, run_soak


@pytest.mark.slow
def test_ten_second_soak_with_reloads(small_artifacts: Path, tmp_path: Path) -> None:
    before = {p.relative_to(small_artifacts): p.stat().st_mtime_ns for p in small_artifacts.rglob("*")}
    settings = SoakSettings(
        artifacts_dir=small_artifacts, results_dir=tmp_path / "results", duration_s=10.0, reload_every_s=2.0
    )
    run = run_soak(settings, log=lambda _: None)
    report = build_report(run)
    json_path, md_path = write_report(report, settings.results_dir)
    failed = [c for c in report["checks"] if c["required"] and not c["passed"]]
    assert report["failure"] is None, report["failure"]
    assert not failed, f"{failed}\n{md_path.read_text()}"

    load, reloads, memory = report["load"], report["reloads"], report["memory"]
    workers = [str(pid) for pid in run.worker_pids]
    assert len(workers) == 2
    assert load["errors"] == 0 and load["requests"] > 0
    assert all(load["per_worker_requests"].get(pid, 0) > 0 for pid in workers)  # both workers answered
    pairs = report["versions"]
    for name, kind in load["kinds"].items():
        assert kind["requests"] > 0 and not kind["errors"], name
        assert all(kind["latency_ms"][p] is not None for p in ("p50", "p95", "p99")), name
        model = "heart" if name.startswith("heart") else "digits"
        assert set(kind["versions"]) <= {pairs[model]["original"], pairs[model]["other"]}, name

    assert reloads["count"] >= 3 and reloads["failed"] == 0
    assert all(r["status"] == 200 for r in reloads["records"])
    for model in ("heart", "digits"):
        assert reloads["outcomes"][model].get("reloaded", 0) >= 1  # versions really swapped
    assert reloads["workers_final"] == {pid: reloads["final"] for pid in workers}
    assert reloads["converged_s_after_last_flip"] is not None

    # memory figures were produced for each worker (their size is for `make soak` to print)
    assert sorted(memory["workers"]) == sorted(workers)
    assert all(isinstance(w["growth_percent"], float) for w in memory["workers"].values())
    assert not memory["restarted_workers"]
    assert report["service"]["exit_code"] == 0

    written = json.loads(json_path.read_text())
    assert written["load"]["requests"] == load["requests"]
    assert "| `heart` `POST /predict/heart` |" in md_path.read_text()
    after = {p.relative_to(small_artifacts): p.stat().st_mtime_ns for p in small_artifacts.rglob("*")}
    assert after == before  # the shared artifacts were only read
