"""`python -m service`: serve; `python -m service --check`: verify the artifacts and exit.

The server is granian (default; README "Why granian" gives the measurements) or uvicorn
(SERVICE_SERVER=uvicorn), both with uvloop, both with their own access logs off (the service writes
its own, without bodies). Workers come from SERVICE_WORKERS; each is a separate process with its own
ONNX sessions, built by `service.app:app_from_env`. granian always runs its workers as child
processes (and replaces one that dies); uvicorn runs a single worker in this process.

Exit status: 0 after a clean shutdown; 2 for invalid settings; 1 when the pre-flight check fails;
3 (uvicorn's start-up failure) when a model cannot be served by an in-process uvicorn worker. The
pre-flight check (`--check` in a child process) runs whenever workers are child processes: a
supervisor whose worker fails to start would otherwise exit 0 or respawn it for ever, hiding the
failure from Kubernetes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from service.logs import configure_logging
from service.settings import Settings, SettingsError

logger = logging.getLogger("service")
APP_FACTORY = "service.app:app_from_env"


def check(settings: Settings) -> int:
    """Verify, load and self-check every model, as start-up does; 0 if all can be served."""
    # Imported here, not at the top: a multi-worker supervisor never needs onnxruntime in memory.
    from service.artifact import ArtifactError
    from service.dataplane import DataPlane

    plane = DataPlane(settings)
    try:
        asyncio.run(plane.load_all())
    except ArtifactError as error:
        logger.critical(
            f"check failed: {error}",
            extra={"model": error.model, "version": error.version, "file": error.file, "reason": error.reason},
        )
        return 1
    logger.info("check passed", extra={"models": {n: s.version for n, s in plane.served.items()}})
    return 0


def preflight() -> int:
    # Without the metrics directory: the checking process's gauges (model_info = 1) would outlive it.
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run([sys.executable, "-m", "service", "--check"], check=False, env=env).returncode


def prepare_metrics_dir(directory: Path | None) -> Path:
    """Create and empty prometheus_client's multiprocess directory, and point the library at it.

    Runs before anything in this process imports prometheus_client (it picks its storage on first
    import) and before workers start (they inherit the variable). Emptied, or a restart would resume
    the counters of the previous run from their files. Used whenever workers are child processes.
    """
    path = directory or Path(tempfile.gettempdir()) / f"modelserve-metrics-{os.getpid()}"
    if path.is_dir() and not path.is_symlink():
        for entry in path.glob("*.db"):
            entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def serve_uvicorn(settings: Settings) -> int:
    from uvicorn.supervisors import Multiprocess

    if settings.workers > 1 and (status := preflight()) != 0:
        return status
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,  # keep service.logs' JSON handler (each worker sets it up in app_from_env)
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=settings.drain_seconds,
    )
    if settings.workers > 1:
        # Each worker drains as uvicorn does (stop accepting, finish in-flight, bounded by the drain).
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    # Imported only here: it imports the metrics, and a supervisor must not own metric files (its
    # never-set readiness gauge would read 0 for ever).
    from service.shutdown import DrainingServer

    config.load_app()
    server = DrainingServer(config)
    server.run()
    return 0 if server.started else 3  # 3: a model could not be served (uvicorn's start-up failure)


def granian_logging() -> dict[str, Any]:
    """granian's own loggers through the same JSON formatter as everything else."""
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {"console": handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        },
    }


def serve_granian(settings: Settings) -> int:
    from granian import Granian  # only when chosen
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    if (status := preflight()) != 0:
        return status
    Granian(
        APP_FACTORY,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        websockets=False,
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=granian_logging(),
        log_access=False,
        respawn_failed_workers=True,  # a worker that dies (OOM killer, SIGKILL) is replaced
        respawn_interval=1.0,
        # On SIGTERM each worker serves on for the shutdown delay (service.shutdown), then granian
        # closes the listener and lets the requests in flight finish: this bounds the whole wait.
        workers_kill_timeout=max(1, math.ceil(settings.shutdown_delay + settings.drain_seconds)),
    ).serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify and self-check the artifacts, then exit")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        sys.stderr.write(json.dumps({"level": "CRITICAL", "logger": "service", "message": str(error)}) + "\n")
        return 2
    configure_logging(settings.log_level)
    if unknown := Settings.unknown_variables():
        logger.warning("ignoring unknown SERVICE_* variables", extra={"names": unknown})
    if args.check:
        return check(settings)
    # Multiprocess mode (one mmap file write per observation, under a lock) only where requests are
    # answered by child processes, or where a directory is configured for it: with one in-process
    # uvicorn worker it cost a third of the single-prediction throughput for nothing.
    shared = settings.workers > 1 or settings.server == "granian" or settings.metrics_dir is not None
    metrics_dir = prepare_metrics_dir(settings.metrics_dir) if shared else None
    logger.info("starting", extra={"settings": settings.describe(), "metrics_dir": str(metrics_dir)})
    try:
        return serve_granian(settings) if settings.server == "granian" else serve_uvicorn(settings)
    finally:
        if metrics_dir is not None and settings.metrics_dir is None:
            # The default directory is this process's own (its pid is in the name): nobody reads it
            # after the server stopped, so it goes rather than piling up in /tmp run after run.
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
