"""One server's part of a run: start it, time its readiness, drive its scenarios, read its memory, stop it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.processes import Server, ServerError, launch, memory_mb, stop
from bench.scenarios import LoadSettings, Scenario, ScenarioResult, run_scenario
from bench.wrk import WrkError


@dataclass
class ServerRun:
    """What one server did in the run."""

    name: str
    command: list[str]
    ready_s: float | None = None
    memory_ready: dict[str, float | None] = field(default_factory=dict)
    memory_after: dict[str, float | None] = field(default_factory=dict)
    exit_code: int | None = None
    log: str = ""
    results: list[ScenarioResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "command": " ".join(self.command),
            "ready_s": self.ready_s,
            "memory_ready": self.memory_ready,
            "memory_after": self.memory_after,
            "exit_code": self.exit_code,
            "log": self.log,
            "failures": self.failures,
        }


def service_env(artifacts_dir: Path, port: int, overrides: dict[str, str]) -> dict[str, str]:
    """The environment a user would start the service with: one worker on a loopback port."""
    env = dict(os.environ)
    env.update(
        {
            "SERVICE_HOST": "127.0.0.1",
            "SERVICE_PORT": str(port),
            "SERVICE_WORKERS": "1",
            "SERVICE_ARTIFACTS_DIR": str(artifacts_dir.resolve()),
            "PYTHONUNBUFFERED": "1",
            "SERVICE_GRPC_PORT": "0",  # off unless a run asks for it (two services at once would share 8001)
        }
    )
    env.update(overrides)
    return env


def trim_log(path: Path, max_bytes: int = 1 << 20, keep_lines: int = 200) -> None:
    """Keep a server log's head and tail if it grew past `max_bytes` (access logs under load do)."""
    try:
        if path.stat().st_size <= max_bytes:
            return
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    cut = len(lines) - 2 * keep_lines
    path.write_text(
        "\n".join([*lines[:keep_lines], f"... {cut} lines cut by bench ...", *lines[-keep_lines:]]) + "\n",
        encoding="utf-8",
    )


def bench_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    scenarios: list[Scenario],
    wrk: str,
    settings: LoadSettings,
    run_dir: Path,
    log: Any = print,
) -> ServerRun:
    """Start the server, run each scenario against it, read its memory after the last one, stop it.

    Failures (never ready, a route that answers wrongly, wrk failing) are recorded in `failures`
    and the run goes on with the next scenario, so one missing route still leaves the other figures.
    """
    run = ServerRun(name=name, command=command)
    log_path = run_dir / f"{name}.log"
    run.log = str(log_path)
    log(f"[{name}] starting: {' '.join(command)} (port {port})")
    try:
        server: Server = launch(name, command, env, port, log_path)
    except ServerError as error:
        run.failures["start"] = str(error)
        log(f"[{name}] FAILED to start: {error}")
        return run
    run.ready_s = server.ready_s
    run.memory_ready = memory_mb(server.process.pid)
    log(f"[{name}] ready in {run.ready_s:.2f} s")
    try:
        for scenario in scenarios:
            if server.process.poll() is not None:
                run.failures[scenario.name] = f"{name} exited with code {server.process.returncode}"
                continue
            try:
                result = run_scenario(wrk, server, scenario, settings, run_dir)
            except (WrkError, OSError) as error:
                run.failures[scenario.name] = f"{scenario.title}: {error}"
                log(f"[{name}] {scenario.title}: FAILED: {error}")
                continue
            run.results.append(result)
            log(
                f"[{name}] {scenario.title}: {result.requests_per_s:,.0f} req/s"
                + (f", {result.rows_per_s:,.0f} rows/s" if scenario.rows > 1 else "")
                + f", p99 {result.latency_ms['p99']:.2f} ms"
                + (f", {result.error_count} ERRORS" if result.error_count else "")
            )
        run.memory_after = memory_mb(server.process.pid)
    finally:
        run.exit_code = stop(server)
        trim_log(log_path)
    return run
