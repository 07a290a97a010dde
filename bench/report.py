"""The figures a run produced: ratios against the targets, machine facts, and the JSON and
Markdown files written under `bench-results/`."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.scenarios import BUSY_SHARE, ScenarioResult
from training.bundle import git_commit

PACKAGES = (
    "litestar",
    "uvicorn",
    "granian",
    "uvloop",
    "httptools",
    "pydantic",
    "msgspec",
    "onnxruntime",
    "numpy",
    "prometheus-client",
    "pandas",
    "torch",
    "scikit-learn",
)


@dataclass(frozen=True)
class Target:
    """One of the issue's performance targets."""

    name: str
    description: str
    unit: str
    target: float
    higher_is_better: bool

    def check(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target


TARGETS = (
    Target("heart_over_health", "single heart rps / GET /health/live rps", "×", 0.5, True),
    Target("heart_over_tutorial", "single heart rps / tutorial recipe rps", "×", 30.0, True),
    Target("heart_batch_rows_per_s", "heart batch rows/s (1 worker)", "rows/s", 250_000.0, True),
    # issue 13's cost goal: one connection, so p50 is one explanation's latency and requests/s the explained
    # patients/s of one worker
    Target("heart_explain_p50_ms", "single heart with explain=true: p50 (1 connection)", "ms", 15.0, False),
    Target("heart_explained_per_s", "explained patients/s (1 worker, 1 connection)", "patients/s", 100.0, True),
    Target("worker_rss_mb", "service worker RSS after the benchmark", "MB", 200.0, False),
    Target("ready_s", "process start → GET /health/ready 200", "s", 3.0, False),
)


def _rps(results: dict[str, ScenarioResult], name: str) -> float | None:
    result = results.get(name)
    return result.requests_per_s if result is not None and result.requests > 0 else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def target_values(
    results: dict[str, ScenarioResult], ready_s: float | None, worker_rss_mb: float | None
) -> dict[str, float | None]:
    """The measured value of each target (None where its scenario did not run)."""
    heart = _rps(results, "heart")
    batch = results.get("heart_batch")
    explain = results.get("heart_explain")
    return {
        "heart_over_health": _ratio(heart, _rps(results, "health")),
        "heart_over_tutorial": _ratio(heart, _rps(results, "tutorial_heart")),
        "heart_batch_rows_per_s": batch.rows_per_s if batch is not None else None,
        "heart_explain_p50_ms": explain.latency_ms.get("p50") if explain is not None and explain.requests else None,
        "heart_explained_per_s": _rps(results, "heart_explain"),
        "worker_rss_mb": worker_rss_mb,
        "ready_s": ready_s,
    }


def evaluate_targets(values: dict[str, float | None]) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "description": t.description,
            "unit": t.unit,
            "value": values.get(t.name),
            "target": t.target,
            "comparison": "≥" if t.higher_is_better else "≤",
            "passed": t.check(values.get(t.name)),
        }
        for t in TARGETS
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    return git_commit(short=True)


def machine_facts(wrk_version: str) -> dict[str, Any]:
    """What the figures depend on: CPU, cores, memory, OS, Python and package versions."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gb": _memory_gb(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": wrk_version,
        "git_commit": _git_commit(),
        "load_average_at_start": list(os.getloadavg()),
    }


def build_report(
    results: list[ScenarioResult],
    *,
    settings: dict[str, Any],
    machine: dict[str, Any],
    service: dict[str, Any],
    tutorial: dict[str, Any],
    artifacts: dict[str, str],
) -> dict[str, Any]:
    """Everything the run measured, as one JSON-ready dict."""
    by_name = {r.name: r for r in results}
    values = target_values(by_name, service.get("ready_s"), service.get("memory_after", {}).get("worker_rss_mb"))
    return {
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "machine": machine,
        "settings": settings,
        "artifacts": artifacts,
        "service": service,
        "tutorial": tutorial,
        "scenarios": [r.to_dict() for r in results],
        "targets": evaluate_targets(values),
    }


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def scenario_table(scenarios: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | server | requests/s | rows/s | p50 ms | p95 ms | p99 ms | errors | server CPU | wrk CPU "
        "| other CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        latency = s["latency_ms"]
        rows = _num(s["rows_per_s"]) if s["rows_per_request"] > 1 else ""
        seconds = s["duration_s"] or 1.0
        runs = f" (best of {s['attempts']})" if s.get("attempts", 1) > 1 else ""
        lines.append(
            f"| {s['title']} | {s['server']} | {_num(s['requests_per_s'])} | {rows} | {_num(latency['p50'], 2)} | "
            f"{_num(latency['p95'], 2)} | {_num(latency['p99'], 2)} | {sum(s['errors'].values())} | "
            f"{s['server_cpu_s'] / seconds:.0%} | {s['wrk_cpu_s'] / seconds:.0%} | "
            f"{s['other_cpu_s'] / seconds:.0%}{runs} |"
        )
    return lines


def target_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["| figure | measured | target | |", "|---|---:|---:|---|"]
    for t in targets:
        digits = 2 if t["unit"] in ("×", "s") else 0
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["passed"]]
        unit = "" if t["unit"] == "×" else f" {t['unit']}"
        lines.append(
            f"| {t['description']} | {_num(t['value'], digits)}{unit} | {t['comparison']} "
            f"{_num(t['target'], digits)}{unit} | {verdict} |"
        )
    return lines


def busy_warning(scenarios: list[dict[str, Any]]) -> list[str]:
    """A warning line if other processes took more than 10 % of a core during any measured run."""
    busy = [s["title"] for s in scenarios if s["other_cpu_s"] > BUSY_SHARE * (s["duration_s"] or 1.0)]
    if not busy:
        return []
    return [
        "",
        f"**Warning:** the machine was busy with other work during {', '.join(busy)}: "
        "those figures are lower than this machine gives; run again on an idle machine.",
    ]


def render_markdown(report: dict[str, Any]) -> str:
    machine, settings, service = report["machine"], report["settings"], report["service"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    memory = service.get("memory_after") or {}
    lines = [
        f"# Benchmark {report['created_at']}",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores ({machine['cpus_usable']} usable), "
        f"{machine['memory_gb']} GB, Linux {machine['kernel']}, Python {machine['python']}; {machine['wrk']}.",
        f"Packages: {packages}. Code: {machine['git_commit']}.",
        "",
        f"Load: wrk -t{settings['threads']} -c{settings['connections']}, {settings['duration_s']:g} s per "
        f"scenario after {settings['warmup_s']:g} s of warm-up, loopback; service started as "
        f"`{settings['service_command']}` with SERVICE_WORKERS=1. Artifacts: "
        + ", ".join(f"{k} {v}" for k, v in report["artifacts"].items())
        + ".",
        "",
        *scenario_table(report["scenarios"]),
        "",
        "CPU columns: CPU seconds used during the measured run ÷ its duration (100 % = one core); "
        "`other` is the rest of the machine (other processes competing for the two cores).",
        *busy_warning(report["scenarios"]),
        "",
        *target_table(report["targets"]),
        "",
        f"Service: ready in {_num(service.get('ready_s'), 2)} s; worker RSS {_num(memory.get('worker_rss_mb'), 1)}"
        f" MB after the benchmark (peak {_num(memory.get('worker_peak_rss_mb'), 1)} MB, "
        f"{_num(memory.get('workers'))} worker process(es)). Tutorial recipe app: ready in "
        f"{_num(report['tutorial'].get('ready_s'), 2)} s, RSS "
        f"{_num((report['tutorial'].get('memory_after') or {}).get('worker_rss_mb'), 1)} MB.",
        "",
        *failure_lines(report),
    ]
    return "\n".join(lines)


def failure_lines(report: dict[str, Any]) -> list[str]:
    """What did not run, and why (a server that never became ready, a route that answered wrongly)."""
    failures = [
        (server, name, text)
        for server in ("service", "tutorial")
        for name, text in report[server].get("failures", {}).items()
    ]
    if not failures:
        return []
    lines = ["## Failures", ""]
    for server, name, text in failures:
        first, *rest = text.splitlines() or [""]
        lines.append(f"- **{server} / {name}**: {first}")
        lines += [f"  {line}" for line in rest[-15:]]
    return [*lines, ""]


def write_report(report: dict[str, Any], run_dir: Path, results_dir: Path) -> tuple[Path, Path]:
    """`results.json` and `results.md` in the run's directory, copied to `latest.*` beside it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text_json = json.dumps(report, indent=2, allow_nan=False) + "\n"
    text_md = render_markdown(report)
    json_path, md_path = run_dir / "results.json", run_dir / "results.md"
    json_path.write_text(text_json, encoding="utf-8")
    md_path.write_text(text_md, encoding="utf-8")
    (results_dir / "latest.json").write_text(text_json, encoding="utf-8")
    (results_dir / "latest.md").write_text(text_md, encoding="utf-8")
    return json_path, md_path
