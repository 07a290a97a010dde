"""Access log lines and request ids; and no feature value ever reaches a log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.contract import HEART_EXAMPLE
from service.settings import Settings

# Values no other part of a log line could contain by chance.
DISTINCTIVE_PATIENT = {
    **HEART_EXAMPLE,
    "age": 97.25,
    "trestbps": 187.375,
    "chol": 654.125,
    "thalach": 61.875,
    "oldpeak": -3.3125,
}
DISTINCTIVE_VALUES = ["97.25", "187.375", "654.125", "61.875", "3.3125"]


def logged_lines(client: TestClient, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The access lines so far: the app writes them once per event-loop turn, so flush first."""
    client.app.asgi_handler.access_log.flush()  # type: ignore[attr-defined]
    return access_lines(capsys.readouterr().out)


def access_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "service.access"]


def test_request_id_is_echoed_or_created(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    given = client.post("/predict/heart", json=HEART_EXAMPLE, headers={"X-Request-ID": "abc-123.x"})
    assert given.headers["x-request-id"] == "abc-123.x"
    made = client.post("/predict/heart", json=HEART_EXAMPLE)
    assert len(made.headers["x-request-id"]) == 24
    unsafe = client.post("/predict/heart", json=HEART_EXAMPLE, headers={"X-Request-ID": 'a b"c' + "x" * 200})
    assert unsafe.headers["x-request-id"].isalnum()
    failed = client.get("/no/such/route", headers={"X-Request-ID": "missing-1"})
    assert failed.headers["x-request-id"] == "missing-1"
    lines = logged_lines(client, capsys)
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["abc-123.x"]["route"] == "/predict/heart"
    assert by_id["abc-123.x"]["status"] == 200
    assert by_id["abc-123.x"]["method"] == "POST"
    assert by_id["abc-123.x"]["duration_ms"] >= 0
    assert by_id["missing-1"]["status"] == 404
    assert by_id["missing-1"]["route"] is None
    assert set(by_id["abc-123.x"]) == {
        "ts", "level", "logger", "message", "request_id", "method", "route", "status", "duration_ms"
    }  # fmt: skip


def test_route_is_the_template_not_the_path(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.get("/models/heart", headers={"X-Request-ID": "tmpl"})
    (line,) = [line for line in logged_lines(client, capsys) if line["request_id"] == "tmpl"]
    assert line["route"] == "/models/{name}"


def test_probes_are_not_logged(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.get("/health/live")
    client.get("/health/ready")
    assert logged_lines(client, capsys) == []


def test_access_log_can_be_switched_off(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    quiet = settings.model_copy(update={"access_log": False})
    with TestClient(app=create_app(quiet)) as client:
        response = client.post("/predict/heart", json=HEART_EXAMPLE)
        assert "x-request-id" in response.headers
        assert logged_lines(client, capsys) == []


def test_no_feature_value_reaches_any_log(
    settings: Settings, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with TestClient(app=create_app(settings)) as client:
        assert client.post("/predict/heart", json=DISTINCTIVE_PATIENT).status_code == 200
        batch = {"instances": [DISTINCTIVE_PATIENT, {**DISTINCTIVE_PATIENT, "cp": None}]}
        assert client.post("/predict/heart/batch?threshold=0.4", json=batch).status_code == 200
        # rejected requests too: the reason goes to the client, never to the log
        assert client.post("/predict/heart", json={**DISTINCTIVE_PATIENT, "cp": 654125}).status_code == 422
        assert client.post("/predict/heart", json={**DISTINCTIVE_PATIENT, "smoker": 97.25}).status_code == 422
        bad_json = b'{"age": 97.25, "chol": 654.125,'
        response = client.post("/predict/heart", content=bad_json, headers={"content-type": "application/json"})
        assert response.status_code == 400
    logged = capsys.readouterr()
    text = logged.out + logged.err + "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert len(access_lines(logged.out)) == 5  # the requests were logged...
    for value in [*DISTINCTIVE_VALUES, "654125", "smoker"]:
        assert value not in text  # ...without what was in them


def test_lines_of_one_loop_turn_go_out_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import io
    import time

    from service.logs import AccessLog

    class CountingStream(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            return super().write(text)

    stream = CountingStream()
    monkeypatch.setattr("sys.stdout", stream)
    log = AccessLog(enabled=True)

    async def one_turn_then_another() -> None:
        for index in range(5):
            log.write(f"id-{index}".encode(), "POST", "/predict/heart", 200, time.perf_counter())
        assert stream.writes == 0  # held until the loop's next turn
        await asyncio.sleep(0)
        assert stream.writes == 1
        log.write(b"id-5", "GET", None, 404, time.perf_counter())
        await asyncio.sleep(0)

    asyncio.run(one_turn_then_another())
    lines = access_lines(stream.getvalue())
    assert stream.writes == 2
    assert [line["request_id"] for line in lines] == [f"id-{index}" for index in range(6)]
    log.write(b"direct", "GET", None, 200, time.perf_counter())  # no loop running: written at once
    assert stream.writes == 3
    assert access_lines(stream.getvalue())[-1]["request_id"] == "direct"
