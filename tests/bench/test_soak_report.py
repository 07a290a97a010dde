"""The soak's checks, report, exit status, version flips and reload answers, from made-up runs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.soak.__main__ import exit_status, parse_args, settings_from
from bench.soak.load import KindResults, LoadResults
from bench.soak.memory import MemorySampler
from bench.soak.mix import Kind
from bench.soak.reloader import Reload, Reloader, read_outcomes
from bench.soak.report import build_report, render_markdown, write_report
from bench.soak.run import SoakRun, SoakSettings, served_versions
from bench.soak.versions import VersionPair, flip

PAIRS = {"heart": VersionPair("heart", "h1", "h2"), "digits": VersionPair("digits", "d1", "d2")}
FINAL = {"heart": "h2", "digits": "d2"}


def made_up_run(tmp_path: Path, *, errors: int = 0, reload_status: int = 200, growth_kb: int = 1_000) -> SoakRun:
    settings = SoakSettings(artifacts_dir=tmp_path, results_dir=tmp_path / "out", duration_s=20.0)
    kinds = [Kind("heart", "/predict/heart", 70, 1, (b"{}",)), Kind("heart_batch", "/predict/heart/batch", 30, 32, ())]
    load = LoadResults(
        kinds={
            "heart": KindResults([0.001, 0.002, 0.003], Counter({"HTTP 500": errors}) if errors else Counter()),
            "heart_batch": KindResults([0.010], Counter(), Counter({"h2": 1})),
        },
        per_worker=Counter({11: 2, 12: 2 + errors}),
        elapsed_s=2.0,
    )
    reloader = Reloader("127.0.0.1", 1, "t" * 32, tmp_path, PAIRS, [11, 12], every_s=5.0, current=dict(FINAL))
    reloader.reloads = [
        Reload(5.0, {"heart": "h2", "digits": "d2"}, 200, {"heart": "reloaded", "digits": "reloaded"}, 0.2, 11),
        Reload(10.0, dict(FINAL), reload_status, {"heart": "unchanged", "digits": "unchanged"}, 0.1, 12),
    ]
    memory = MemorySampler(10, 1, first_pids=[11, 12])
    memory.samples = {
        11: [(0.0, 90_000), (3.0, 100_000), (20.0, 100_000 + growth_kb)],
        12: [(3.0, 100_000), (20.0, 100_000)],
    }
    return SoakRun(
        settings=settings,
        kinds=kinds,
        pairs=PAIRS,
        command=["python", "-m", "service"],
        env={"SERVICE_WORKERS": "2", "SERVICE_ADMIN_TOKEN": "<secret>"},
        ready_s=1.0,
        worker_pids=[11, 12],
        load=load,
        reloader=reloader,
        memory=memory,
        final_versions={11: dict(FINAL), 12: dict(FINAL)},
        converged_s=1.5,
        cpu={"server_s": 3.0, "client_s": 0.5, "other_s": 0.1},
        load_average={"start": [1.0, 1.0, 1.0], "end": [2.0, 1.0, 1.0]},
        exit_code=0,
    )


def test_a_clean_run_passes_and_its_figures_add_up(tmp_path: Path) -> None:
    report = build_report(made_up_run(tmp_path))
    assert report["passed"] and all(c["passed"] for c in report["checks"])
    load = report["load"]
    assert load["requests"] == 4 and load["errors"] == 0
    assert load["requests_per_s"] == 2.0 and load["rows_per_s"] == (3 + 32) / 2.0
    assert load["kinds"]["heart"]["latency_ms"] == {"p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0}
    assert report["reloads"]["outcomes"] == {
        "heart": {"reloaded": 1, "unchanged": 1},
        "digits": {"reloaded": 1, "unchanged": 1},
    }
    worker = report["memory"]["workers"]["11"]
    assert worker["baseline_at_s"] == 3.0 and worker["growth_percent"] == pytest.approx(1.0)
    assert "t" * 32 not in json.dumps(report)  # the admin token is never written
    text = render_markdown(report)
    assert "| `heart` `POST /predict/heart` | 70 % | 1 | 3 | 0 | 2 | 2.00 | 3.00 | 3.00 | 3.0 |" in text
    assert "+1.0 %" in text and "2 (`POST /admin/reload`" in text
    js, md = write_report(report, tmp_path / "out")
    assert json.loads(js.read_text())["passed"] and md.read_text() == text
    assert exit_status(report, strict=True) == 0


def test_errors_failed_reloads_and_missing_convergence_fail_the_run(tmp_path: Path) -> None:
    run = made_up_run(tmp_path, errors=2, reload_status=409)
    run.final_versions[12] = {"heart": "h1", "digits": "d2"}
    report = build_report(run)
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert failed == {
        "zero failed requests",
        "reloads happened and all succeeded",
        "every worker ended on the final versions",
    }
    assert not report["passed"] and exit_status(report, strict=False) == 1


def test_a_silent_or_restarted_worker_or_an_unknown_version_fails_the_run(tmp_path: Path) -> None:
    run = made_up_run(tmp_path)
    assert run.load is not None and run.memory is not None
    run.load.per_worker = Counter({11: 4})
    run.memory.samples[13] = [(10.0, 50_000), (20.0, 50_000)]
    run.load.kinds["heart"].versions["h9"] = 1
    failed = {c["name"] for c in build_report(run)["checks"] if not c["passed"]}
    assert failed == {"every worker answered requests", "no worker restarted", "every answer named a published version"}


def test_memory_growth_is_a_target_not_a_failure_unless_strict(tmp_path: Path) -> None:
    report = build_report(made_up_run(tmp_path, growth_kb=10_000))
    memory = next(c for c in report["checks"] if c["name"].startswith("worker RSS growth"))
    assert not memory["passed"] and not memory["required"] and report["passed"]
    assert exit_status(report, strict=False) == 0 and exit_status(report, strict=True) == 1
    assert "**missed** (target)" in render_markdown(report)


def test_flips_alternate_each_models_current_atomically(tmp_path: Path) -> None:
    for model in PAIRS:
        (tmp_path / model).mkdir()
    current = {"heart": "h1", "digits": "d1"}
    current = flip(tmp_path, PAIRS, current)
    assert current == {"heart": "h2", "digits": "d2"}
    assert (tmp_path / "heart" / "CURRENT").read_text() == "h2\n"
    assert flip(tmp_path, PAIRS, current) == {"heart": "h1", "digits": "d1"}
    assert (tmp_path / "digits" / "CURRENT").read_text() == "d1\n"
    assert sorted(p.name for p in (tmp_path / "heart").iterdir()) == ["CURRENT"]  # no temp file left


def test_admin_and_models_answers_are_read() -> None:
    body = (
        b'{"models":[{"model":"heart","result":"reloaded","previous":"a","version":"b"},'
        b'{"model":"digits","result":"unchanged","previous":"c","version":"c"}]}'
    )
    assert read_outcomes(body) == {"heart": "reloaded", "digits": "unchanged"}
    assert read_outcomes(b'{"error":{}}') == {} and read_outcomes(b"not json") == {}
    assert Reload(0.0, {}, 200, {"heart": "reloaded"}).ok and not Reload(0.0, {}, 200, {"heart": "failed"}).ok
    assert not Reload(0.0, {}, None, {}, error="ConnectionResetError").ok
    models = b'{"models":[{"name":"heart","version":"h2","sha256":"x"},{"name":"digits","version":"d2"}]}'
    assert served_versions(models) == FINAL and served_versions(b"[]") == {}


def test_command_line(tmp_path: Path) -> None:
    args = parse_args(
        [
            "--artifacts-dir",
            str(tmp_path),
            "--seconds",
            "10",
            "--reload-every",
            "0",
            "--strict",
            "--service-env",
            "A=b=c",
        ]
    )
    settings = settings_from(args)
    assert (settings.duration_s, settings.reload_every_s, settings.clients, settings.workers) == (10.0, 0.0, 64, 2)
    assert args.strict and settings.service_env == {"A": "b=c"}
    for wrong in (["--seconds", "0"], ["--reload-every", "-1"], ["--service-env", "NOEQUALS"]):
        with pytest.raises(SystemExit):
            parse_args(wrong)
