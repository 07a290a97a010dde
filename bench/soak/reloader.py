"""Hot reloads during the load: flip every model's CURRENT to its other version, then POST
/admin/reload (to whichever worker the kernel gives the connection; the other worker follows
through its SERVICE_RELOAD_INTERVAL poll of CURRENT)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.soak.mix import http_request
from bench.soak.versions import VersionPair, flip
from bench.soak.workers import request_with_owner


@dataclass
class Reload:
    """One flip and its admin request: when, the targets, the answer and which worker gave it."""

    at_s: float
    target: dict[str, str]
    status: int | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # model → reloaded / unchanged / failed
    seconds: float | None = None
    worker: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and all(r in ("reloaded", "unchanged") for r in self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def read_outcomes(body: bytes) -> dict[str, str]:
    """{model: result} from the admin route's 200 answer (`{"models": [{"model", "result", ...}]}`)."""
    try:
        models = json.loads(body)["models"]
        return {str(m["model"]): str(m["result"]) for m in models}
    except (ValueError, KeyError, TypeError):
        return {}


@dataclass
class Reloader:
    host: str
    port: int
    token: str
    artifacts_dir: Path
    pairs: dict[str, VersionPair]
    worker_pids: list[int]
    every_s: float
    timeout_s: float = 30.0
    current: dict[str, str] = field(default_factory=dict)
    reloads: list[Reload] = field(default_factory=list)
    last_flip: float | None = None  # time.monotonic() of the last flip

    async def reload_once(self, started: float) -> Reload:
        self.current = flip(self.artifacts_dir, self.pairs, self.current)
        self.last_flip = time.monotonic()
        record = Reload(at_s=round(self.last_flip - started, 3), target=dict(self.current))
        headers = {"Authorization": f"Bearer {self.token}", "Content-Length": "0"}
        raw = http_request("POST", "/admin/reload", f"{self.host}:{self.port}", None, headers)
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                status, body, record.worker = await request_with_owner(self.host, self.port, raw, self.worker_pids)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as error:
            record.error = f"{type(error).__name__}: {error}"
        else:
            record.status = status
            record.outcomes = read_outcomes(body) if status == 200 else {}
            if status != 200:
                record.error = body[:500].decode("utf-8", "replace")
        record.seconds = round(time.perf_counter() - began, 3)
        self.reloads.append(record)
        return record

    async def run(self, started: float, until: float) -> None:
        """Reload every `every_s` seconds from `started` while a whole interval fits before `until`
        (both time.monotonic()), so the last reload is not cut off by the end of the load."""
        self.current = {model: pair.original for model, pair in self.pairs.items()}
        if self.every_s <= 0:  # reloads switched off
            return
        next_at = started + self.every_s
        while next_at + 1.0 <= until:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await self.reload_once(started)
            next_at += self.every_s
