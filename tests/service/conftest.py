"""Fixtures for the service tests: settings over the small trained artifacts and a running app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="session")
def settings(small_artifacts: Path) -> Settings:
    return Settings(artifacts_dir=small_artifacts)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app per test module, started through its lifespan (so models are loaded and checked)."""
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


ErrorCheck = Callable[..., dict[str, Any]]


@pytest.fixture
def expect_error() -> ErrorCheck:
    """Assert a response is the one error shape with this status and code (and, if given, that
    `field` is among the offending fields); return the error object."""

    def check(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"error"}
        error = body["error"]
        assert set(error) == {"code", "message", "fields"}
        assert error["code"] == code
        assert isinstance(error["message"], str) and error["message"]
        if field is not None:
            fields = [entry["field"] for entry in error["fields"]]
            assert field in fields, fields
            assert all(entry["reason"] for entry in error["fields"])
        return error

    return check
