"""Forget the `live*` gauges of worker processes that died, as prometheus_client asks a server to do.

In multiprocess mode each worker writes its gauges to `gauge_<mode>_<pid>.db`. For the `live*` modes
(`livemax`, `livemin`, `livesum`, `liveall`) the library counts a file only while its process is
alive, but it cannot know that by itself: the server must call `multiprocess.mark_process_dead(pid)`.
uvicorn's and granian's supervisors never do, so after a worker was killed (OOM killer, SIGKILL, a
crash) its last values stayed in every scrape for ever: `modelserve_model_info` kept reporting the
version the dead worker served (1 under `livemax`) after the live workers had moved on, and
`modelserve_ready` / `modelserve_model_ready` (`livemin`) mixed in a process that no longer answers.

`sweep_dead_workers` removes the live-gauge files of every pid that no longer runs (absent, or a zombie
not yet reaped by its supervisor). `MetricsController` runs it before each `GET /metrics`, so every
scrape reflects exactly the live workers whatever restarted them. Counters and histograms are not
touched: a dead worker's predictions did happen, and its files keep them in the totals.

The known gap: a pid reused by an unrelated process within one scrape interval keeps its predecessor's
gauges until that process exits too (pids are not reused that quickly on Linux in practice).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.plugins.prometheus import PrometheusController
from prometheus_client import CONTENT_TYPE_LATEST

logger = logging.getLogger("service.metrics_dir")
# The files mark_process_dead removes: prometheus_client's _LIVE_GAUGE_MULTIPROCESS_MODES.
LIVE_GAUGE_FILE = re.compile(r"^gauge_(?:livemax|livemin|livesum|liveall|livemostrecent)_(\d+)\.db$")
PROC = Path("/proc")


def pid_is_running(pid: int) -> bool:
    """True if `pid` is a process that has not exited (a zombie, killed but not yet reaped, has)."""
    if PROC.is_dir():
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        except OSError:
            return True  # exists but unreadable: assume alive rather than drop a live worker's gauges
        # "pid (comm) state ...": comm may itself hold ')' and spaces, so split after the last ')'
        return stat.rpartition(")")[2].split()[:1] != ["Z"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiprocess_dir() -> Path | None:
    """prometheus_client's directory if this process runs in multiprocess mode."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # what service.__main__ sets for its workers
    return Path(value) if value else None


def sweep_dead_workers(directory: Path | None = None) -> list[int]:
    """Remove the live-gauge files of pids that are not running; return those pids (sorted)."""
    directory = directory or multiprocess_dir()
    if directory is None:
        return []
    try:
        names = [path.name for path in directory.iterdir()]
    except OSError:
        return []
    dead: set[int] = set()
    for name in names:
        match = LIVE_GAUGE_FILE.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or (pid not in dead and pid_is_running(pid)):
            continue
        dead.add(pid)
        try:
            (directory / name).unlink()
        except FileNotFoundError:
            pass  # another worker's scrape removed it first
        except OSError as error:
            logger.warning("cannot remove a dead worker's gauge file", extra={"file": name, "error": str(error)})
    if dead:
        logger.info("removed the live gauges of dead workers", extra={"pids": sorted(dead)})
    return sorted(dead)


async def _sweep_before_scrape(_: Any) -> None:
    sweep_dead_workers()  # a directory listing and one /proc read per worker file: microseconds


class MetricsController(PrometheusController):
    """Litestar's `GET /metrics`, scraping only the live-gauge files of workers that are running."""

    before_request = _sweep_before_scrape

    # Litestar's handler leaves its media type unset, so OpenAPI documented the exposition as
    # `application/json` (the schema fuzzer, tests/reliability/test_fuzz_openapi.py, caught it): the
    # same handler, documented as the Prometheus text format it sends.
    @get(
        media_type=CONTENT_TYPE_LATEST,  # what the handler sends
        summary="Prometheus exposition (text format)",
        tags=["health"],
    )
    async def get(self) -> Response:
        return await PrometheusController.get.fn(self)
