"""Fixtures for the Open Inference Protocol tests: an app over the small trained artifacts, and the
reference rows as V2 input tensors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.dataplane import DataPlane, Served
from service.settings import Settings


@pytest.fixture(scope="session")
def v2_settings(small_artifacts: Path) -> Settings:
    return Settings(artifacts_dir=small_artifacts, access_log=False)


@pytest.fixture(scope="module")
def client(v2_settings: Settings) -> Iterator[TestClient]:
    """One app per test module, started through its lifespan (so models are loaded and checked)."""
    with TestClient(app=create_app(v2_settings)) as test_client:
        yield test_client


V2Error = Callable[..., str]


@pytest.fixture
def expect_v2_error() -> V2Error:
    """Assert a response is the protocol's error shape with this status, whose message mentions each
    of `mentions`; return the message."""

    def check(response: httpx.Response, status: int, *mentions: str) -> str:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"error"}, body
        message = body["error"]
        assert isinstance(message, str) and message
        for mention in mentions:
            assert mention in message, (mention, message)
        return message

    return check


@pytest.fixture(scope="module")
def heart(v2_settings: Settings) -> Iterator[tuple[Served, asyncio.AbstractEventLoop]]:
    """The heart model served by a data plane of its own (no app), with the loop to run its calls on."""
    loop = asyncio.new_event_loop()
    plane = DataPlane(v2_settings)
    loop.run_until_complete(plane.load_all())
    yield plane.get("heart"), loop
    loop.close()
