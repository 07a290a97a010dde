"""Asking each worker process something: fresh connections until every worker has answered one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench.soak.client import Connection
from bench.soak.mix import http_request
from bench.soak.owners import owners

Accept = Callable[[int, bytes], bool]


async def request_with_owner(host: str, port: int, raw: bytes, worker_pids: list[int]) -> tuple[int, bytes, int | None]:
    """One request on a fresh connection: (status, body, pid of the worker that answered, if found)."""
    connection = await Connection.connect(host, port)
    try:
        status, body = await connection.request(raw)
        return status, body, owners([connection.local_port], port, worker_pids).get(connection.local_port)
    finally:
        connection.close()


async def ask_each_worker(
    host: str,
    port: int,
    worker_pids: list[int],
    method: str,
    path: str,
    accept: Accept,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    parallel: int = 8,
) -> dict[int, tuple[int, bytes]]:
    """Send `method path` on `parallel` fresh connections at a time until each worker's latest answer
    satisfies `accept` or `timeout_s` passes; {pid: (status, body)} of the latest answer of each
    worker that answered (a worker may be missing if the kernel never gave it a connection)."""
    raw = http_request(method, path, f"{host}:{port}", None, headers)
    latest: dict[int, tuple[int, bytes]] = {}
    deadline = time.monotonic() + timeout_s

    async def probe() -> None:
        status, body, owner = await request_with_owner(host, port, raw, worker_pids)
        if owner is not None:
            latest[owner] = (status, body)

    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                await asyncio.gather(*(probe() for _ in range(parallel)))
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
            pass
        if all(pid in latest and accept(*latest[pid]) for pid in worker_pids):
            break
        await asyncio.sleep(0.05)
    return latest
