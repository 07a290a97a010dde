"""The gRPC tests' service: `python -m service` with its gRPC port on a free one (one process per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.processes import free_port, start, stop, wait_ready


@pytest.fixture(scope="module")
def service(small_artifacts: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    process, url = start(small_artifacts, SERVICE_ACCESS_LOG="false", SERVICE_GRPC_PORT=str(port))
    try:
        wait_ready(process, url)
        yield {"url": url, "target": f"127.0.0.1:{port}"}
    finally:
        stop(process)
