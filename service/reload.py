"""Hot reload: verify a model's new version exactly as start-up does, then swap it in atomically.

Each worker process reloads itself. `POST /admin/reload` reloads the worker that received it; every
worker also polls its models' `CURRENT` files every SERVICE_RELOAD_INTERVAL seconds and reloads when
the content names another version, so all workers converge on the new version within one interval.
A version that fails verification is remembered, and retried only once `CURRENT` changes again (so
a bad publish is counted once per worker, not every interval). Pinned models are never reloaded.

In-flight requests keep the served version they already hold (its micro-batcher still flushes), so they
all complete; requests that arrive after the swap get the new one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from service.artifact import ArtifactError, resolve_version
from service.dataplane import DataPlane
from service.memory import settle_heap
from service.metrics import RELOADS

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


async def reload_models(plane: DataPlane, models: tuple[str, ...] | None = None) -> list[ReloadOutcome]:
    """Reload each model whose target version differs from the one served; failures keep the old one."""
    async with plane.reload_lock:  # one reload at a time per worker (admin route and poller)
        outcomes = [await _reload_one(plane, name) for name in (plane.names if models is None else models)]
    if any(outcome.result == "reloaded" for outcome in outcomes):
        settle_heap()  # once for all the versions replaced
    return outcomes


async def _reload_one(plane: DataPlane, name: str) -> ReloadOutcome:
    old = plane.get(name)
    settings = plane.settings
    try:
        target = resolve_version(settings.artifacts_dir, name, settings.pinned_version(name))
        if target == old.version:
            return ReloadOutcome(name, "unchanged", old.version, target)
        served = await plane.load(name)
    except ArtifactError as error:
        RELOADS.labels(name, "failure").inc()
        plane.failed_targets[name] = error.version or UNREADABLE
        logger.error(
            f"reload failed, still serving {old.version}: {error}",
            extra={"model": name, "version": error.version, "file": error.file, "reason": error.reason},
        )
        return ReloadOutcome(name, "failed", old.version, error.version, error.file, error.reason)
    plane.swap(name, served)
    plane.failed_targets.pop(name, None)
    RELOADS.labels(name, "success").inc()
    logger.info("model reloaded", extra={"model": name, "previous": old.version, "version": served.version})
    return ReloadOutcome(name, "reloaded", old.version, served.version)


def _stale(plane: DataPlane) -> tuple[str, ...]:
    """Models whose CURRENT names a version neither served nor already refused."""
    settings = plane.settings
    if not plane.served:
        return ()
    stale = []
    for name in plane.names:
        if settings.pinned_version(name) is not None:
            continue
        try:
            target = resolve_version(settings.artifacts_dir, name)
        except ArtifactError:
            target = UNREADABLE  # a reload reports it, once until it changes
        if target != plane.served[name].version and target != plane.failed_targets.get(name):
            stale.append(name)
    return tuple(stale)


async def poll_current(plane: DataPlane, interval: float) -> None:
    """Reload whatever CURRENT changed to, every `interval` seconds, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            if stale := _stale(plane):
                await reload_models(plane, stale)
        except Exception as error:  # never let the poller die silently; the next round retries
            logger.error("reload poll failed", extra={"error_type": type(error).__name__})
