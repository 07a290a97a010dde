"""Starting `python -m service` as a real process, and reading its Prometheus exposition."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
LOGS: dict[int, Path] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(artifacts: Path, **extra: str) -> tuple[subprocess.Popen[str], str]:
    """The service on a free loopback port; returns the process and its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "SERVICE_ARTIFACTS_DIR": str(artifacts),
            "SERVICE_HOST": "127.0.0.1",
            "SERVICE_PORT": str(port),
            "SERVICE_GRPC_PORT": "0",  # no gRPC unless a test asks (a shared default port would mix servers)
            **extra,
        }
    )
    # Logs go to a file, not a pipe: a pipe nobody reads fills up (64 kB of access log) and blocks the server.
    log = tempfile.NamedTemporaryFile("w+", prefix="service-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    LOGS[process.pid] = Path(log.name)
    log.close()
    return process, f"http://127.0.0.1:{port}"


def output(process: subprocess.Popen[str]) -> str:
    """Everything the process wrote so far."""
    return LOGS[process.pid].read_text()


def wait_ready(process: subprocess.Popen[str], url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited with {process.returncode}:\n{output(process)}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("the service did not become ready")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    if (log := LOGS.pop(process.pid, None)) is not None:
        log.unlink(missing_ok=True)


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) → value for every sample of a scrape."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def total(exposition: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, got), value in samples(exposition).items() if sample == name and wanted <= got)


def delta(before: str, after: str, name: str, **labels: str) -> float:
    """How much the samples called `name` (with `labels`) grew between two scrapes."""
    return total(after, name, **labels) - total(before, name, **labels)


def scrape(client: Any) -> str:
    """`GET /metrics` through a client (a Litestar TestClient or an httpx client): the exposition text."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text
