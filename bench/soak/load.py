"""The load: N concurrent clients, each a keep-alive connection sending the mix until a deadline or
a request budget runs out; every answer is checked (200, a model version) and timed per kind."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.soak.client import Connection, HttpError
from bench.soak.mix import Kind, http_request, schedule

VERSION_KEY = b'"version":"'
Lookup = Callable[[list[int]], dict[int, int]]  # client ports → pid of the worker holding the other end


@dataclass
class KindResults:
    """What one request kind got: latencies of the 200s (seconds), errors by reason, versions seen."""

    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)


@dataclass
class LoadResults:
    kinds: dict[str, KindResults]
    per_worker: Counter[int] = field(default_factory=Counter)  # requests answered, by worker pid (-1: unknown)
    made: list[Connection] = field(default_factory=list)  # every connection opened
    unmapped_connections: int = 0  # connections whose worker could not be found in /proc
    error_examples: list[str] = field(default_factory=list)
    started: float = 0.0
    elapsed_s: float = 0.0

    @property
    def connections(self) -> int:
        return len(self.made)

    @property
    def requests(self) -> int:
        return sum(len(k.latencies_s) + sum(k.errors.values()) for k in self.kinds.values())

    @property
    def errors(self) -> int:
        return sum(sum(k.errors.values()) for k in self.kinds.values())


@dataclass
class LoadPlan:
    host: str
    port: int
    kinds: list[Kind]
    clients: int
    duration_s: float
    max_requests: int
    timeout_s: float = 30.0  # how long after the end an unanswered request is still waited for
    requests_per_connection: int = 1000  # then the client reconnects (connections churn, as with real clients)
    seed: int = 0


def version_of(body: bytes) -> str | None:
    """The top-level `version` of a prediction answer (the last one in the JSON), without parsing it."""
    at = body.rfind(VERSION_KEY)
    if at < 0:
        return None
    start = at + len(VERSION_KEY)
    end = body.find(b'"', start)
    return body[start:end].decode("ascii", "replace") if end > 0 else None


class Budget:
    """The requests left to send (one event loop: no lock needed)."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def close(connection: Connection, lookup: Lookup) -> None:
    """Close a connection, first finding its worker if the tracker has not yet (rare: it lived < 1 s)."""
    if connection.owner is None and connection.requests:
        connection.owner = lookup([connection.local_port]).get(connection.local_port)
    connection.close()


async def client(
    index: int,
    plan: LoadPlan,
    prepared: list[tuple[bytes, ...]],
    results: LoadResults,
    deadline: float,
    budget: Budget,
    lookup: Lookup,
) -> None:
    """One client: cycle through a seeded order of the kinds; a failed request is recorded, its
    connection dropped, and the next request goes on a new one. Its last connection is left open for
    run_load to attribute to a worker."""
    order = schedule(plan.kinds, plan.seed + index)
    position, connection = index, None
    while time.monotonic() < deadline and budget.take():
        kind_index = order[position % len(order)]
        kind, bodies = plan.kinds[kind_index], prepared[kind_index]
        raw = bodies[(position // len(order) + index) % len(bodies)]
        position += 1
        record = results.kinds[kind.name]
        started = time.perf_counter()
        try:
            if connection is None:
                connection = await Connection.connect(plan.host, plan.port)
                results.made.append(connection)
            status, body = await connection.request(raw)
        except asyncio.CancelledError:  # still unanswered `timeout_s` after the end: run_load gave up
            record.errors["no answer by the end"] += 1
            raise
        except (OSError, EOFError, HttpError, asyncio.IncompleteReadError) as error:
            reason = type(error).__name__
            record.errors[reason] += 1
            if len(results.error_examples) < 20:
                results.error_examples.append(f"{kind.name}: {reason}: {error}")
            if connection is not None:
                close(connection, lookup)
            connection = None
            continue
        elapsed = time.perf_counter() - started
        if status != 200:
            record.errors[f"HTTP {status}"] += 1
            if len(results.error_examples) < 20:
                results.error_examples.append(f"{kind.name}: HTTP {status}: {body[:300]!r}")
        else:
            record.latencies_s.append(elapsed)
            record.versions[version_of(body) or "?"] += 1
        if not connection.open or connection.requests >= plan.requests_per_connection:
            close(connection, lookup)
            connection = None


def attribute(connections: list[Connection], lookup: Lookup) -> None:
    """Find the worker of every connection that has answered and whose worker is not known yet (one
    /proc reading for all of them)."""
    pending = [c for c in connections if c.owner is None and c.open and c.requests]
    if pending:
        found = lookup([c.local_port for c in pending])
        for connection in pending:
            connection.owner = found.get(connection.local_port)


async def track_owners(connections: list[Connection], lookup: Lookup, every_s: float = 1.0) -> None:
    """Attribute new connections to workers once a second, until cancelled: reading /proc/net/tcp takes
    milliseconds (tens on a busy machine), too long to do per connection inside the load."""
    while True:
        await asyncio.sleep(every_s)
        attribute(connections, lookup)


async def run_load(plan: LoadPlan, lookup: Lookup, started: float) -> LoadResults:
    """All the clients at once from `started` (time.monotonic()), until `plan.duration_s` has passed or
    `plan.max_requests` were sent. `lookup` maps client ports to the worker pids holding their other end."""
    host = f"{plan.host}:{plan.port}"
    prepared = [tuple(http_request("POST", k.path, host, body) for body in k.bodies) for k in plan.kinds]
    results = LoadResults(kinds={k.name: KindResults() for k in plan.kinds})
    budget = Budget(plan.max_requests)
    results.started = started
    deadline = results.started + plan.duration_s
    tracker = asyncio.create_task(track_owners(results.made, lookup))
    tasks = [
        asyncio.create_task(client(i, plan, prepared, results, deadline, budget, lookup)) for i in range(plan.clients)
    ]
    # One timer for the whole run instead of one per request: a request still unanswered `timeout_s`
    # after the end is cancelled and counted as an error.
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()) + plan.timeout_s)
    results.elapsed_s = time.monotonic() - results.started
    tracker.cancel()
    for task in pending:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    attribute(results.made, lookup)
    for connection in results.made:
        connection.close()
        results.per_worker[connection.owner or -1] += connection.requests
        results.unmapped_connections += connection.owner is None and connection.requests > 0
    for outcome in outcomes:
        if isinstance(outcome, Exception):  # a bug in the client itself: not hidden
            raise outcome
    return results
