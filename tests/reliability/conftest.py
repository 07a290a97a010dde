"""One real `python -m service` process (small trained artifacts, admin route on), shared by the
hostile-input and fuzz suites of this package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.live import ADMIN_TOKEN, LiveService
from tests.service.processes import start, stop, wait_ready


@pytest.fixture(scope="package")
def live_service(small_artifacts: Path) -> Iterator[LiveService]:
    """The service as users run it, with SERVICE_ADMIN_TOKEN set so that /admin/reload exists."""
    process, url = start(
        small_artifacts,
        SERVICE_ADMIN_TOKEN=ADMIN_TOKEN,
        SERVICE_RELOAD_INTERVAL="0",  # nothing publishes a version during these suites
        SERVICE_ACCESS_LOG="false",
    )
    try:
        wait_ready(process, url)
        with httpx.Client(base_url=url, timeout=60) as client:
            yield LiveService(process, url, client)
    finally:
        stop(process)
