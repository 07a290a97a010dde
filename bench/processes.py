"""Starting a server as a subprocess, timing its readiness, and reading its memory and CPU from /proc."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A server process that exited or never became ready."""


@dataclass
class Server:
    """A running server process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log: IO[bytes]
    ready_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout_s: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request over a fresh loopback connection: (status, body)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        if headers is None:
            headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start_server(
    name: str, command: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path | None = None
) -> Server:
    """Start `command` with its stdout and stderr in `log_path` (never a pipe nobody reads)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Server(name=name, process=process, port=port, log_path=log_path, log=log)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_ready(
    server: Server, started_at: float, path: str = "/health/ready", timeout_s: float = 60.0, poll_s: float = 0.01
) -> float:
    """Seconds from `started_at` (a perf_counter taken just before the process was started) until
    GET `path` answers 200. Raises ServerError if the process exits or the time runs out."""
    deadline = started_at + timeout_s
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"{server.name} exited with code {server.process.returncode} before it was ready;"
                f" its log ({server.log_path}) ends with:\n{log_tail(server.log_path)}"
            )
        try:
            status, _ = http_request(server.port, "GET", path, timeout_s=1.0)
        except OSError:
            status = 0
        if status == 200:
            server.ready_s = time.perf_counter() - started_at
            return server.ready_s
        time.sleep(poll_s)
    raise ServerError(
        f"{server.name} was not ready (GET {path} → 200) within {timeout_s:.0f} s;"
        f" its log ({server.log_path}) ends with:\n{log_tail(server.log_path)}"
    )


def launch(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    log_path: Path,
    ready_path: str = "/health/ready",
    timeout_s: float = 60.0,
) -> Server:
    """Start a server and wait until it is ready; its `ready_s` is the time from process start."""
    started_at = time.perf_counter()
    server = start_server(name, command, env, port, log_path)
    try:
        wait_ready(server, started_at, ready_path, timeout_s)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: Server, grace_s: float = 10.0) -> int | None:
    """SIGTERM the server's process group, then SIGKILL it if it is still there after `grace_s`."""
    process = server.process
    try:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=grace_s)
    except ProcessLookupError:
        pass
    finally:
        server.log.close()
    return process.returncode


def children(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """Every descendant of `pid` (from the ppid field of /proc/<pid>/stat)."""
    parents: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in sorted(parents.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def status_kb(pid: int, field: str, proc: Path = Path("/proc")) -> int | None:
    """A `kB` field (VmRSS, VmHWM, ...) of /proc/<pid>/status; None if the process is gone."""
    try:
        text = (proc / str(pid) / "status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def worker_pids(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """The processes that serve requests: the descendants if a supervisor forked workers (uvicorn
    with several workers, granian), else the process itself (uvicorn with one worker)."""
    return children(pid, proc) or [pid]


def memory_mb(pid: int, proc: Path = Path("/proc")) -> dict[str, float | None]:
    """RSS of the worker(s) in MB (the largest, as one worker's figure), their peak, and the whole tree's RSS."""
    workers = worker_pids(pid, proc)
    rss = [kb for w in workers if (kb := status_kb(w, "VmRSS", proc)) is not None]
    peak = [kb for w in workers if (kb := status_kb(w, "VmHWM", proc)) is not None]
    tree = [kb for p in {pid, *workers} if (kb := status_kb(p, "VmRSS", proc)) is not None]
    return {
        "worker_rss_mb": max(rss) / 1024 if rss else None,
        "worker_peak_rss_mb": max(peak) / 1024 if peak else None,
        "tree_rss_mb": sum(tree) / 1024 if tree else None,
        "workers": float(len(workers)),
    }


def cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds of `pid` and its descendants so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *children(pid, proc)]:
        try:
            fields = (proc / str(p) / "stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return total / ticks


def system_busy_seconds(proc: Path = Path("/proc")) -> float:
    """CPU seconds the whole machine spent busy (all cores, from the first line of /proc/stat)."""
    fields = (proc / "stat").read_text(encoding="utf-8").splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait_s: float, share: float = 0.10, sample_s: float = 1.0) -> float:
    """Wait (at most `max_wait_s`) until the machine spends less than `share` of one core busy over
    `sample_s`; returns the busy share last seen. Call it while the benchmarked server is idle."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        before = system_busy_seconds()
        time.sleep(sample_s)
        busy = (system_busy_seconds() - before) / sample_s
        if busy < share or time.perf_counter() >= deadline:
            return busy


def python_command(*args: str) -> list[str]:
    """The same interpreter as the bench (the project's venv)."""
    return [sys.executable, *args]
