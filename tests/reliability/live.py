"""Helpers of the reliability suites: a running service that can say it is still the same healthy
process, the one error shape, and the Markdown tables the suites write for RELIABILITY.md."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from service.contract import HEART_EXAMPLE

ADMIN_TOKEN = "reliability-suite-admin-token-0123456789"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench-results"


@dataclass
class LiveService:
    """A running service: its process, base URL and a client on it."""

    process: subprocess.Popen[str]
    url: str
    client: httpx.Client
    pid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pid = self.process.pid

    def assert_still_healthy(self) -> None:
        """Same process, ready, and a valid prediction still answers 200 (the worker did not die)."""
        assert self.process.poll() is None, f"the service exited with {self.process.returncode}"
        assert self.process.pid == self.pid
        ready = self.client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        answer = self.client.post("/predict/heart", json=HEART_EXAMPLE)
        assert answer.status_code == 200, answer.text
        assert 0.0 <= answer.json()["probability"] <= 1.0


def assert_error_shape(response: httpx.Response, status: int, field_name: str | None = None) -> dict[str, Any]:
    """The one error shape `{"error": {"code", "message", "fields": [{"field", "reason"}]}}` with `status`,
    naming `field_name` among the offending fields when given; returns the error object."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], list)
    for entry in error["fields"]:
        assert set(entry) == {"field", "reason"} and entry["field"] and entry["reason"], entry
    if field_name is not None:
        assert field_name in [entry["field"] for entry in error["fields"]], error
    return error


def write_table(name: str, title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Path:
    """A Markdown table in bench-results/<name>.md (for RELIABILITY.md), also printed (`pytest -s`)."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.md"
    path.write_text(text)
    return path
