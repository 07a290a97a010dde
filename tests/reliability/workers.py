"""Worker processes seen through /proc, a continuous load of predictions, and multiprocess metric files."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.service.processes import output, stop

LIVE_GAUGE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def children(pid: int) -> list[int]:
    """Direct children of `pid` (every thread's list: a child belongs to the thread that forked it)."""
    found: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
    return sorted(set(found))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):  # gone, or exiting (a killed worker being reaped)
        return ""


def workers(supervisor: int) -> set[int]:
    """The server's worker processes: its children except multiprocessing's resource tracker (uvicorn
    spawns workers, `spawn_main` in their command line; granian forks them, same command line as the
    supervisor)."""
    return {pid for pid in children(supervisor) if (line := cmdline(pid)) and "resource_tracker" not in line}


def live_gauge_pids(metrics_dir: Path) -> set[int]:
    """The pids that own live-gauge files (`modelserve_ready`, `model_ready`, `model_info`...)."""
    return {int(m.group(1)) for path in metrics_dir.iterdir() if (m := LIVE_GAUGE.match(path.name))}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_workers_ready(process: subprocess.Popen[str], metrics_dir: Path, count: int = 2) -> set[int]:
    """`count` workers, each of which has set its readiness gauge (so has loaded and checked the models)."""

    def ready() -> set[int] | None:
        if process.poll() is not None:
            raise AssertionError(f"the service exited with {process.returncode}:\n{output(process)}")
        pids = workers(process.pid)
        return pids if len(pids) == count and all(is_ready(metrics_dir, pid) for pid in pids) else None

    return wait_for(ready, f"{count} ready workers")


def shut_down(process: subprocess.Popen[str]) -> None:
    """SIGKILL the supervisor's workers first (a killed supervisor leaves them running), then the rest."""
    if process.poll() is None:
        for pid in workers(process.pid):
            os.kill(pid, signal.SIGKILL)
    stop(process)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def read_metrics_dir(directory: Path, only_pid: int | None = None) -> Samples:
    """(sample, labels) → value summed over the directory's files (or one pid's), even with no server."""
    with tempfile.TemporaryDirectory(prefix="metrics-copy-") as copy:
        if only_pid is not None:  # the collector reads a directory: give it one with that pid's files only
            for path in directory.glob(f"*_{only_pid}.db"):
                shutil.copyfile(path, Path(copy) / path.name)
            directory = Path(copy)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(directory))
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in registry.collect()
            for sample in family.samples
        }


def is_ready(metrics_dir: Path, pid: int) -> bool:
    """That worker has set its own readiness gauge to 1 (its gauge files exist from import on, at 0)."""
    return summed(read_metrics_dir(metrics_dir, only_pid=pid), "modelserve_ready") == 1


def summed(values: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, got), value in values.items() if sample == name and wanted <= got)


@dataclass
class Outcome:
    """One request: which route and rows, when it was sent and finished, the status or the error."""

    request_id: str
    route: str
    rows: int
    sent: float
    done: float
    status: int | None
    error: str | None = None


@dataclass
class Load:
    """Client threads, each with its own keep-alive connection, sending predictions back to back."""

    url: str
    requests: list[tuple[str, Any, int]]  # (route, JSON body, rows) per client, sent round and round
    stop_at_first_error: bool = True
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        self._threads = [threading.Thread(target=self._client, args=(job,), daemon=True) for job in self.requests]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in self._threads), "a client thread hung"

    def _client(self, job: tuple[str, Any, int]) -> None:
        route, body, rows = job
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                request_id = uuid.uuid4().hex
                sent = time.time()
                try:
                    response = client.post(route, json=body, headers={"X-Request-ID": request_id})
                    outcome = Outcome(request_id, route, rows, sent, time.time(), response.status_code)
                except httpx.TransportError as error:
                    outcome = Outcome(request_id, route, rows, sent, time.time(), None, type(error).__name__)
                with self._lock:
                    self.outcomes.append(outcome)
                if outcome.status is None and self.stop_at_first_error:
                    return

    def count(self, predicate: Callable[[Outcome], bool]) -> int:
        with self._lock:
            return sum(1 for outcome in self.outcomes if predicate(outcome))

    def answered(self) -> int:
        return self.count(lambda o: o.status == 200)
