"""One soak run: prepare two versions of each model, start `python -m service` with several workers,
drive the mixed load while reloading every few seconds and sampling memory, then check that every
worker ended on the last version; stop the service."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import (
    Server,
    children,
    cpu_seconds,
    free_port,
    launch,
    python_command,
    stop,
    system_busy_seconds,
)
from bench.runner import service_env, trim_log
from bench.soak.load import LoadPlan, LoadResults, run_load
from bench.soak.memory import MemorySampler
from bench.soak.mix import Kind, build_kinds
from bench.soak.owners import owners, serving_processes
from bench.soak.reloader import Reloader
from bench.soak.versions import VersionPair, copy_current, prepare_versions
from bench.soak.workers import ask_each_worker

HOST = "127.0.0.1"
RELOAD_INTERVAL_S = 5.0  # the service's default SERVICE_RELOAD_INTERVAL, which the soak keeps


@dataclass(frozen=True)
class SoakSettings:
    artifacts_dir: Path
    results_dir: Path
    duration_s: float = 60.0
    clients: int = 64
    workers: int = 2
    reload_every_s: float = 5.0
    max_requests: int = 2_000_000
    batch_rows: int = 32
    timeout_s: float = 30.0
    requests_per_connection: int = 1000
    seed: int = 0
    service_env: dict[str, str] = field(default_factory=dict)  # extra environment for the service


@dataclass
class SoakRun:
    """Everything a run observed; `report.build_report` turns it into figures."""

    settings: SoakSettings
    kinds: list[Kind]
    pairs: dict[str, VersionPair]
    command: list[str]
    env: dict[str, str]
    prepare_s: float | None = None  # copying the artifacts and training the second versions
    ready_s: float | None = None
    worker_pids: list[int] = field(default_factory=list)
    ready_workers: list[int] = field(default_factory=list)
    load: LoadResults | None = None
    reloader: Reloader | None = None
    memory: MemorySampler | None = None
    final_versions: dict[int, dict[str, str]] = field(default_factory=dict)
    converged_s: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    load_average: dict[str, list[float]] = field(default_factory=dict)
    exit_code: int | None = None
    log_path: str = ""
    failure: str | None = None


def wait_for_workers(supervisor: int, port: int, count: int, timeout_s: float = 60.0) -> list[int]:
    """The supervisor's worker pids (its children holding the listening socket), once `count` exist."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = serving_processes(children(supervisor), port)
        if len(pids) >= count or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def served_versions(body: bytes) -> dict[str, str]:
    """{model: version} from GET /models."""
    try:
        return {str(m["name"]): str(m["version"]) for m in json.loads(body)["models"]}
    except (ValueError, KeyError, TypeError):
        return {}


def event_loop_runner() -> asyncio.Runner:
    """uvloop if it is installed (it is with the `serve` extra): the client then costs less CPU."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


async def drive(run: SoakRun, server: Server, token: str, artifacts_dir: Path) -> None:
    settings, pids = run.settings, run.worker_pids
    ready = await ask_each_worker(HOST, server.port, pids, "GET", "/health/ready", lambda s, _: s == 200, 60.0)
    run.ready_workers = sorted(pid for pid, (status, _) in ready.items() if status == 200)
    plan = LoadPlan(
        HOST,
        server.port,
        run.kinds,
        settings.clients,
        settings.duration_s,
        settings.max_requests,
        settings.timeout_s,
        settings.requests_per_connection,
        settings.seed,
    )
    reloader = Reloader(HOST, server.port, token, artifacts_dir, run.pairs, pids, settings.reload_every_s)
    sampler = MemorySampler(server.process.pid, server.port)
    run.reloader, run.memory = reloader, sampler

    def lookup(ports: list[int]) -> dict[int, int]:
        return owners(ports, server.port, pids)

    cpu_server, busy = cpu_seconds(server.process.pid), system_busy_seconds()
    client = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    until = started + settings.duration_s
    run.load, *_ = await asyncio.gather(
        run_load(plan, lookup, started), reloader.run(started, until), sampler.run(started, until)
    )
    after = resource.getrusage(resource.RUSAGE_SELF)
    server_s = cpu_seconds(server.process.pid) - cpu_server
    client_s = (after.ru_utime - client.ru_utime) + (after.ru_stime - client.ru_stime)
    other_s = max(0.0, system_busy_seconds() - busy - server_s - client_s)
    run.cpu = {"server_s": server_s, "client_s": client_s, "other_s": other_s}
    final = dict(reloader.current)

    def on_final(status: int, body: bytes) -> bool:
        return status == 200 and served_versions(body) == final

    answers = await ask_each_worker(HOST, server.port, pids, "GET", "/models", on_final, RELOAD_INTERVAL_S + 10)
    run.final_versions = {pid: served_versions(body) for pid, (_, body) in answers.items()}
    if all(on_final(*answers[pid]) for pid in pids if pid in answers) and set(answers) == set(pids):
        run.converged_s = time.monotonic() - (reloader.last_flip or started)


def run_soak(settings: SoakSettings, log: Callable[[str], None] = print) -> SoakRun:
    """The whole run. Raises RuntimeError (ServerError included) if the second versions cannot be trained
    or the service never gets ready; anything failing after that lands in `failure`."""
    settings.results_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="soak-artifacts-") as scratch:
        artifacts_dir = Path(scratch) / "artifacts"
        preparing = time.perf_counter()
        if settings.reload_every_s > 0:
            log(f"[soak] copying {settings.artifacts_dir}'s current versions; training a second version of each model")
            pairs = prepare_versions(settings.artifacts_dir, artifacts_dir, settings.results_dir / "soak-training.log")
            for pair in pairs.values():
                log(f"[soak] {pair.model}: {pair.original} (copied) <-> {pair.other} (trained --small)")
        else:
            copied = copy_current(settings.artifacts_dir, artifacts_dir)
            pairs = {model: VersionPair(model, version, version) for model, version in copied.items()}
        token = secrets.token_hex(16)
        port = free_port()
        overrides = {**settings.service_env, "SERVICE_WORKERS": str(settings.workers), "SERVICE_ADMIN_TOKEN": token}
        env = service_env(artifacts_dir, port, overrides)
        prepare_s = time.perf_counter() - preparing
        run = SoakRun(
            settings,
            build_kinds(artifacts_dir, settings.batch_rows),
            pairs,
            python_command("-m", "service"),
            {k: ("<secret>" if k == "SERVICE_ADMIN_TOKEN" else v) for k, v in overrides.items()},
        )
        run.prepare_s = prepare_s
        log_path = settings.results_dir / "soak-service.log"
        run.log_path = str(log_path)
        log(f"[soak] starting python -m service with {settings.workers} workers on port {port}")
        server = launch("service", run.command, env, port, log_path, timeout_s=120.0)
        run.ready_s = server.ready_s
        try:
            run.worker_pids = wait_for_workers(server.process.pid, port, settings.workers)
            reloads = f"a reload every {settings.reload_every_s:g} s" if settings.reload_every_s > 0 else "no reloads"
            log(
                f"[soak] ready in {server.ready_s:.2f} s; workers {run.worker_pids}; {settings.clients} clients for "
                f"{settings.duration_s:g} s, {reloads}"
            )
            run.load_average["start"] = list(os.getloadavg())
            with event_loop_runner() as runner:
                runner.run(drive(run, server, token, artifacts_dir))
            run.load_average["end"] = list(os.getloadavg())
        except Exception as error:  # recorded and reported; the service is stopped in any case
            run.failure = f"{type(error).__name__}: {error}"
        finally:
            run.exit_code = stop(server)
            trim_log(log_path)
    return run
