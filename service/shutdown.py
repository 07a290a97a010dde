"""Graceful shutdown: on SIGTERM readiness turns false at once, in-flight requests finish, exit 0.

uvicorn (the one-worker, in-process case) already stops accepting connections and waits for the
requests in flight; `DrainingServer` adds two things: readiness (and the `modelserve_ready` gauge)
drops in the signal handler itself, before anything else happens, and the process exits 0 instead of
re-raising the signal (143), so Kubernetes records a clean stop. The wait is bounded by
SERVICE_DRAIN_SECONDS (uvicorn's `timeout_graceful_shutdown`); keep the pod's
terminationGracePeriodSeconds above preStop pause + drain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import weakref
from collections.abc import Generator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from service.metrics import set_ready

if TYPE_CHECKING:
    from service.dataplane import DataPlane

logger = logging.getLogger("service.shutdown")
_watched: list[weakref.ref[DataPlane]] = []
HANDLED = (signal.SIGINT, signal.SIGTERM)


def watch(plane: DataPlane) -> None:
    """Let a shutdown signal turn this app's readiness false."""
    _watched.append(weakref.ref(plane))


def begin_drain() -> None:
    """Readiness false in every app of this process: /health/ready answers 503 from now on."""
    names: set[str] = set()
    for ref in _watched:
        if (plane := ref()) is not None:
            plane.ready = False
            names.update(plane.names)
    set_ready(sorted(names), False)
    logger.info("draining: not ready, finishing the requests in flight")


def drain_granian_worker_on_sigterm(plane: DataPlane, delay: float) -> bool:
    """In a granian worker: on SIGTERM, drain for `delay` seconds before granian stops serving.

    granian's own SIGTERM handling closes the listener and every idle keep-alive connection at once.
    A client that had just sent its next request on such a connection loses it (it sees the
    connection closed without an answer): under load, `tests/reliability` lost one request in three
    runs that way. Instead, for `delay` seconds: readiness is false (so the pod leaves the Service's
    endpoints), every response says `Connection: close` (so clients stop reusing connections and the
    ones that were idle get their last answer), and new connections are still accepted; then granian
    stops as usual (SIGINT to ourselves runs its handler), finishing what is in flight. Returns True
    if installed (a granian worker with an event loop that takes signal handlers).
    """
    if delay <= 0:
        return False
    loop = asyncio.get_running_loop()
    stopping = False

    def on_sigterm() -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        begin_drain()
        plane.closing = True
        loop.call_later(delay, os.kill, os.getpid(), signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)  # replaces granian's handler for SIGTERM only
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


class DrainingServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            begin_drain()
        super().handle_exit(sig, frame)

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """uvicorn's, without re-raising the signal afterwards: a drained stop is a clean exit."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
