"""Graceful shutdown: on SIGTERM readiness turns false at once, in-flight requests finish, exit 0.

uvicorn (the one-worker, in-process case) already stops accepting connections and waits for the
requests in flight; `DrainingServer` adds two things: readiness (and the `modelserve_ready` gauge)
drops in the signal handler itself, before anything else happens, and the process exits 0 instead of
re-raising the signal (143), so Kubernetes records a clean stop. The wait is bounded by
SERVICE_DRAIN_SECONDS (uvicorn's `timeout_graceful_shutdown`); keep the pod's
terminationGracePeriodSeconds above preStop pause + drain.
"""

from __future__ import annotations

import logging
import signal
import threading
import weakref
from collections.abc import Generator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from service.contract import MODEL_NAMES
from service.metrics import set_ready

if TYPE_CHECKING:
    from service.registry import ServiceState

logger = logging.getLogger("service.shutdown")
_watched: list[weakref.ref[ServiceState]] = []
HANDLED = (signal.SIGINT, signal.SIGTERM)


def watch(state: ServiceState) -> None:
    """Let a shutdown signal turn this app's readiness false."""
    _watched.append(weakref.ref(state))


def begin_drain() -> None:
    """Readiness false in every app of this process: /health/ready answers 503 from now on."""
    for ref in _watched:
        if (state := ref()) is not None:
            state.ready = False
    set_ready(MODEL_NAMES, False)
    logger.info("draining: not ready, finishing the requests in flight")


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
