"""A soak run's figures as one JSON-ready dict, its pass/fail checks, and the Markdown table."""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import _cpu_model
from bench.soak.run import RELOAD_INTERVAL_S, SoakRun
from bench.soak.stats import latency_summary, memory_growth, warmup_seconds
from training.bundle import git_commit

MEMORY_GROWTH_TARGET_PERCENT = 5.0


def load_figures(run: SoakRun) -> dict[str, Any]:
    load = run.load
    if load is None:
        return {}
    elapsed = load.elapsed_s or 1.0
    kinds = {}
    for kind in run.kinds:
        got = load.kinds[kind.name]
        answered = len(got.latencies_s)
        kinds[kind.name] = {
            "path": kind.path,
            "weight_percent": kind.weight,
            "rows": kind.rows,
            "requests": answered + sum(got.errors.values()),
            "errors": dict(got.errors),
            "requests_per_s": answered / elapsed,
            "latency_ms": latency_summary(got.latencies_s),
            "versions": dict(got.versions),
        }
    rows = sum(len(load.kinds[k.name].latencies_s) * k.rows for k in run.kinds)
    return {
        "seconds": load.elapsed_s,
        "requests": load.requests,
        "errors": load.errors,
        "requests_per_s": load.requests / elapsed,
        "rows_per_s": rows / elapsed,
        "connections": load.connections,
        "unmapped_connections": load.unmapped_connections,
        "per_worker_requests": {str(pid): n for pid, n in sorted(load.per_worker.items())},
        "error_examples": load.error_examples,
        "kinds": kinds,
    }


def memory_figures(run: SoakRun) -> dict[str, Any]:
    sampler = run.memory
    if sampler is None:
        return {}
    warmup = warmup_seconds(run.settings.duration_s)
    workers = {}
    for pid, samples in sorted(sampler.samples.items()):
        growth = memory_growth(samples, warmup)
        workers[str(pid)] = (
            None
            if growth is None
            else {
                "baseline_mb": growth.baseline_kb / 1024,
                "baseline_at_s": growth.baseline_at_s,
                "final_mb": growth.final_kb / 1024,
                "final_at_s": growth.final_at_s,
                "peak_mb": growth.peak_kb / 1024,
                "growth_percent": growth.growth_percent,
            }
        )
    return {
        "warmup_s": warmup,
        "workers": workers,
        "restarted_workers": sampler.new_pids,
        "samples": {str(pid): samples for pid, samples in sampler.samples.items()},
    }


def reload_figures(run: SoakRun) -> dict[str, Any]:
    reloader = run.reloader
    if reloader is None:
        return {}
    outcomes: dict[str, Counter[str]] = {}
    for record in reloader.reloads:
        for model, result in record.outcomes.items():
            outcomes.setdefault(model, Counter())[result] += 1
    return {
        "count": len(reloader.reloads),
        "ok": sum(r.ok for r in reloader.reloads),
        "failed": sum(not r.ok for r in reloader.reloads),
        "by_worker": dict(Counter(str(r.worker) for r in reloader.reloads)),
        "outcomes": {model: dict(c) for model, c in outcomes.items()},
        "seconds": [r.seconds for r in reloader.reloads],
        "records": [r.to_dict() for r in reloader.reloads],
        "final": dict(reloader.current),
        "workers_final": {str(pid): v for pid, v in run.final_versions.items()},
        "converged_s_after_last_flip": run.converged_s,
    }


def checks(report: dict[str, Any], workers: list[int]) -> list[dict[str, Any]]:
    """What must hold (`required`: the run fails otherwise) and the memory target (a figure)."""
    load, reloads, memory = report["load"], report["reloads"], report["memory"]
    answered = {int(pid) for pid, n in load.get("per_worker_requests", {}).items() if n > 0}
    growth = [w["growth_percent"] for w in memory.get("workers", {}).values() if w is not None]
    final = reloads.get("final")
    reloading = report["settings"]["reload_every_s"] > 0
    published = {v for pair in report["versions"].values() for v in pair.values()}
    unknown = {v for kind in load.get("kinds", {}).values() for v in kind["versions"]} - published
    items = [
        ("the run completed", report["failure"] is None, report["failure"] or ""),
        ("zero failed requests", load.get("requests", 0) > 0 and load.get("errors") == 0, f"{load.get('errors')}"),
        (
            "reloads happened and all succeeded",
            (reloads.get("count", 0) > 0 or not reloading) and reloads.get("failed") == 0,
            f"{reloads.get('ok')}/{reloads.get('count')} ok" if reloading else "reloads switched off",
        ),
        ("every answer named a published version", not unknown, f"unknown: {sorted(unknown)}" if unknown else ""),
        ("every worker answered requests", bool(workers) and set(workers) <= answered, f"{sorted(answered)}"),
        (
            "every worker ended on the final versions",
            bool(workers) and all(reloads.get("workers_final", {}).get(str(pid)) == final for pid in workers),
            f"final {final}",
        ),
        ("no worker restarted", not memory.get("restarted_workers"), f"{memory.get('restarted_workers')}"),
    ]
    result = [{"name": n, "passed": bool(p), "required": True, "detail": d} for n, p, d in items]
    result.append(
        {
            "name": f"worker RSS growth after warm-up < {MEMORY_GROWTH_TARGET_PERCENT:g} %",
            "passed": bool(growth) and max(growth) < MEMORY_GROWTH_TARGET_PERCENT,
            "required": False,
            "detail": ", ".join(f"{g:+.1f} %" for g in growth),
        }
    )
    return result


def build_report(run: SoakRun) -> dict[str, Any]:
    settings = run.settings
    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "machine": {
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "git_commit": git_commit(short=True),
            "load_average": run.load_average,
        },
        "settings": {
            "duration_s": settings.duration_s,
            "clients": settings.clients,
            "workers": settings.workers,
            # what `python -m service` runs unless SERVICE_SERVER says otherwise (service.settings)
            "server": settings.service_env.get("SERVICE_SERVER", "granian"),
            "reload_every_s": settings.reload_every_s,
            "service_reload_interval_s": RELOAD_INTERVAL_S,
            "max_requests": settings.max_requests,
            "batch_rows": settings.batch_rows,
            "requests_per_connection": settings.requests_per_connection,
            "timeout_s": settings.timeout_s,
            "service_command": "python -m service",
            "service_env": run.env,
            "artifacts_dir": str(settings.artifacts_dir),
        },
        "versions": {m: {"original": p.original, "other": p.other} for m, p in run.pairs.items()},
        "service": {
            "prepare_s": run.prepare_s,
            "ready_s": run.ready_s,
            "workers": run.worker_pids,
            "ready_workers": run.ready_workers,
            "exit_code": run.exit_code,
            "log": run.log_path,
        },
        "cpu": run.cpu,
        "load": load_figures(run),
        "reloads": reload_figures(run),
        "memory": memory_figures(run),
        "failure": run.failure,
    }
    report["checks"] = checks(report, run.worker_pids)
    report["passed"] = all(c["passed"] for c in report["checks"] if c["required"])
    return report


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    s, load, reloads, memory, cpu = (
        report["settings"],
        report["load"],
        report["reloads"],
        report["memory"],
        report["cpu"],
    )
    machine = report["machine"]
    lines = [
        f"# Soak {report['created_at']}",
        "",
        f"`python -m service` ({s.get('server', 'granian')}, SERVICE_WORKERS={s['workers']}, SERVICE_ADMIN_TOKEN set, "
        "reload poll "
        f"{s['service_reload_interval_s']:g} s) under {s['clients']} concurrent keep-alive clients on loopback for "
        f"{s['duration_s']:g} s (at most {s['max_requests']:,} requests), "
        + (f"a hot reload every {s['reload_every_s']:g} s. " if s["reload_every_s"] > 0 else "no reloads. ")
        + f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores; load average "
        f"{' '.join(f'{x:.2f}' for x in machine['load_average'].get('start', []))} at the start, "
        f"{' '.join(f'{x:.2f}' for x in machine['load_average'].get('end', []))} at the end. "
        f"Code: {machine['git_commit']}. Preparing the two versions took {_num(report['service']['prepare_s'], 0)} s; "
        f"the service was ready {_num(report['service']['ready_s'], 2)} s after its start.",
        "",
    ]
    if load:
        elapsed = load["seconds"] or 1.0
        lines += [
            f"**{load['requests']:,} requests in {load['seconds']:.1f} s: {load['requests_per_s']:,.0f} requests/s, "
            f"{load['rows_per_s']:,.0f} rows/s, {load['errors']} errors** (any transport error or non-200 answer "
            f"counts). CPU during the load: service {cpu.get('server_s', 0) / elapsed:.0%}, load client "
            f"{cpu.get('client_s', 0) / elapsed:.0%}, other processes {cpu.get('other_s', 0) / elapsed:.0%} "
            "(100 % = one core).",
            "",
            "| request | share | rows | requests | errors | requests/s | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, k in load["kinds"].items():
            latency = k["latency_ms"]
            lines.append(
                f"| `{name}` `POST {k['path']}` | {k['weight_percent']} % | {k['rows']} | {k['requests']:,} | "
                f"{sum(k['errors'].values())} | {k['requests_per_s']:,.0f} | {_num(latency['p50'], 2)} | "
                f"{_num(latency['p95'], 2)} | {_num(latency['p99'], 2)} | {_num(latency['max'], 1)} |"
            )
        per_worker = ", ".join(f"{pid}: {n:,}" for pid, n in load["per_worker_requests"].items())
        lines += ["", f"Requests answered per worker (pid: requests): {per_worker}; {load['connections']} connections."]
    if memory:
        lines += [
            "",
            f"| worker | RSS at {memory['warmup_s']:g} s (warm) MB | RSS at end MB | peak MB | growth |",
            "|---|---:|---:|---:|---:|",
        ]
        for pid, w in memory["workers"].items():
            if w is None:
                lines.append(f"| {pid} | – | – | – | – |")
                continue
            lines.append(
                f"| {pid} | {w['baseline_mb']:.1f} | {w['final_mb']:.1f} | {w['peak_mb']:.1f} | "
                f"{w['growth_percent']:+.1f} % |"
            )
    if reloads and not reloads["count"]:
        lines += ["", f"Reloads: none. After the load every worker served {reloads['final']}."]
    elif reloads:
        outcomes = "; ".join(
            f"{model}: " + ", ".join(f"{n} {result}" for result, n in c.items())
            for model, c in reloads["outcomes"].items()
        )
        seconds = [x for x in reloads["seconds"] if x is not None]
        lines += [
            "",
            f"Reloads: {reloads['count']} (`POST /admin/reload` after flipping both models' CURRENT), "
            f"{reloads['ok']} answered 200 with no model refused, {reloads['failed']} failed; outcomes in the worker "
            f"that answered: {outcomes or 'none'}; each took {_num(min(seconds, default=None), 2)}–"
            f"{_num(max(seconds, default=None), 2)} s. After the load every worker served "
            f"{reloads['final']}: {'yes' if reloads['converged_s_after_last_flip'] is not None else '**no**'}"
            + (
                f" ({reloads['converged_s_after_last_flip']:.1f} s after the last flip)."
                if reloads["converged_s_after_last_flip"] is not None
                else "."
            ),
        ]
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for c in report["checks"]:
        verdict = "pass" if c["passed"] else ("**FAIL**" if c["required"] else "**missed** (target)")
        lines.append(f"| {c['name']} | {verdict} | {c['detail']} |")
    if load and load.get("error_examples"):
        lines += ["", "Errors (first ones):", *[f"- {e}" for e in load["error_examples"]]]
    if report["failure"]:
        lines += ["", f"**The run failed:** {report['failure']}"]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], results_dir: Path) -> tuple[Path, Path]:
    """`soak.json` and `soak.md` in `results_dir`."""
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = results_dir / "soak.json", results_dir / "soak.md"
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
