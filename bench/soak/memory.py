"""Resident memory of each worker, sampled every second from /proc/<pid>/status (VmRSS)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import children, status_kb
from bench.soak.owners import serving_processes

PROC = Path("/proc")


@dataclass
class MemorySampler:
    """Samples of the supervisor's workers (its children holding the listening socket): {pid: [(seconds,
    kB)]}. A pid that appears after the first sample is a worker the supervisor started again."""

    supervisor: int
    port: int
    interval_s: float = 1.0
    proc: Path = PROC
    samples: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    first_pids: list[int] = field(default_factory=list)

    def sample(self, at_s: float) -> None:
        pids = serving_processes(children(self.supervisor, self.proc), self.port, self.proc)
        if not self.first_pids:
            self.first_pids = list(pids)
        for pid in pids:
            kb = status_kb(pid, "VmRSS", self.proc)
            if kb is not None:
                self.samples.setdefault(pid, []).append((round(at_s, 3), kb))

    @property
    def new_pids(self) -> list[int]:
        return [pid for pid in self.samples if pid not in self.first_pids]

    async def run(self, started: float, until: float) -> None:
        """A sample at `started` and every `interval_s` after it, and a last one at `until` (time.monotonic())."""
        next_at = started
        while next_at < until:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            self.sample(time.monotonic() - started)
            next_at += self.interval_s
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        self.sample(time.monotonic() - started)
