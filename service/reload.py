"""Hot reload: verify a model's new version exactly as start-up does, then swap it in atomically.

Each worker process reloads itself. `POST /admin/reload` reloads the worker that received it; every
worker also polls its models' `CURRENT` files every SERVICE_RELOAD_INTERVAL seconds and reloads when
the content names another version, so all workers converge on the new version within one interval.
A version that fails verification is remembered, and retried only once `CURRENT` changes again (so
a bad publish is counted once per worker, not every interval). Pinned models are never reloaded.

In-flight requests keep the predictor they already hold (its micro-batcher still flushes), so they
all complete; requests that arrive after the swap get the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
from dataclasses import dataclass

from service.artifact import ArtifactError, resolve_version
from service.contract import MODEL_NAMES
from service.metrics import RELOADS
from service.registry import Registry, ServiceState, load_one

logger = logging.getLogger("service.reload")
UNREADABLE = "<unreadable CURRENT>"


@dataclass(frozen=True)
class ReloadOutcome:
    """What happened to one model: `reloaded`, `unchanged` or `failed` (then file and reason say why)."""

    model: str
    result: str
    previous: str
    version: str | None
    file: str | None = None
    reason: str | None = None


async def reload_models(state: ServiceState, models: tuple[str, ...] = MODEL_NAMES) -> list[ReloadOutcome]:
    """Reload each model whose target version differs from the one served; failures keep the old one."""
    async with state.reload_lock:  # one reload at a time per worker (admin route and poller)
        outcomes = [await _reload_one(state, name) for name in models]
    if any(outcome.result == "reloaded" for outcome in outcomes):
        release_freed_memory()  # once for all the versions replaced
    return outcomes


async def _reload_one(state: ServiceState, name: str) -> ReloadOutcome:
    registry = state.registry
    assert registry is not None, "reload before the models were loaded"
    old = registry.predictors[name]
    settings = state.settings
    try:
        target = resolve_version(settings.artifacts_dir, name, settings.pinned_version(name))
        if target == old.version:
            return ReloadOutcome(name, "unchanged", old.version, target)
        predictor, info = await load_one(settings, name)
    except ArtifactError as error:
        RELOADS.labels(name, "failure").inc()
        state.failed_targets[name] = error.version or UNREADABLE
        logger.error(
            f"reload failed, still serving {old.version}: {error}",
            extra={"model": name, "version": error.version, "file": error.file, "reason": error.reason},
        )
        return ReloadOutcome(name, "failed", old.version, error.version, error.file, error.reason)
    current = state.registry or registry  # nothing else swaps while the lock is held
    state.registry = Registry.of({**current.predictors, name: predictor}, {**current.models, name: info})
    state.failed_targets.pop(name, None)
    if old.metrics is not None:
        old.metrics.retire()
    RELOADS.labels(name, "success").inc()
    logger.info("model reloaded", extra={"model": name, "previous": old.version, "version": predictor.version})
    return ReloadOutcome(name, "reloaded", old.version, predictor.version)


def release_freed_memory() -> None:
    """Give the replaced version's freed memory back to the kernel (glibc keeps freed heap pages)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _stale(state: ServiceState) -> tuple[str, ...]:
    """Models whose CURRENT names a version neither served nor already refused."""
    registry, settings = state.registry, state.settings
    if registry is None:
        return ()
    stale = []
    for name in MODEL_NAMES:
        if settings.pinned_version(name) is not None:
            continue
        try:
            target = resolve_version(settings.artifacts_dir, name)
        except ArtifactError:
            target = UNREADABLE  # a reload reports it, once until it changes
        if target != registry.predictors[name].version and target != state.failed_targets.get(name):
            stale.append(name)
    return tuple(stale)


async def poll_current(state: ServiceState, interval: float) -> None:
    """Reload whatever CURRENT changed to, every `interval` seconds, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            if stale := _stale(state):
                await reload_models(state, stale)
        except Exception as error:  # never let the poller die silently; the next round retries
            logger.error("reload poll failed", extra={"error_type": type(error).__name__})
