"""SIGTERM: readiness drops at once, requests in flight finish with 200, the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from service import shutdown
from service.app import create_app
from service.settings import Settings
from tests.service.processes import output, start, stop, total, wait_ready

COUNT = 32


def test_draining_turns_readiness_false_at_once(small_artifacts: Path) -> None:
    with TestClient(app=create_app(Settings(artifacts_dir=small_artifacts))) as client:
        assert client.get("/health/ready").status_code == 200
        shutdown.begin_drain()  # what the SIGTERM handler calls first
        assert client.get("/health/ready").status_code == 503
        assert total(client.get("/metrics").text, "modelserve_ready") == 0
        assert client.post("/predict/heart", json={"age": 50, "sex": 0}).status_code == 200  # still answers


def test_while_closing_every_response_asks_the_client_not_to_reuse_its_connection(small_artifacts: Path) -> None:
    with TestClient(app=create_app(Settings(artifacts_dir=small_artifacts))) as client:
        assert "connection" not in client.post("/predict/heart", json={"age": 50, "sex": 0}).headers
        client.app.state.plane.closing = True  # what SIGTERM sets (granian)
        for response in (
            client.post("/predict/heart", json={"age": 50, "sex": 0}),
            client.post("/predict/heart", json={"age": 500, "sex": 0}),
            client.get("/health/ready"),
            client.get("/no/such/route"),
        ):
            assert response.headers["connection"] == "close"


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_sigterm_lets_requests_in_flight_finish_and_exits_0(
    small_artifacts: Path, digits_reference: dict[str, Any], server: str
) -> None:
    process, url = start(small_artifacts, SERVICE_DRAIN_SECONDS="30", SERVICE_ACCESS_LOG="false", SERVICE_SERVER=server)
    try:
        wait_ready(process, url)
        body = json.dumps({"instances": [digits_reference["inputs"][0]] * 1000}).encode()
        host, port = url.removeprefix("http://").split(":")
        request = (
            f"POST /predict/digit/batch HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        # Raw sockets, accepted first (a health probe answered on each: a connection still in the
        # kernel's backlog is not in flight, and closing the listener resets it), then one batch sent
        # whole on each from its own thread. Each takes 10-20 ms on one worker: 32 queue up.
        sockets = [socket.create_connection((host, int(port)), timeout=60) for _ in range(COUNT)]
        for sock in sockets:
            sock.sendall(f"GET /health/live HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            answer = b""
            while b'{"status":"live"}' not in answer:
                answer += sock.recv(1024)
        senders = [threading.Thread(target=sock.sendall, args=(request,)) for sock in sockets]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        time.sleep(0.1)  # a few event-loop turns: every request parsed, most not yet answered
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Readiness drops at once (both servers); granian serves on for SERVICE_SHUTDOWN_DELAY first.
        assert _not_ready_within(url, seconds=1), "still ready after SIGTERM"
        answers = [_read_all(sock) for sock in sockets]
        # Requests were still being answered after the signal (else the test proves nothing).
        assert time.monotonic() - signalled > 0.02, "nothing was in flight: make the requests slower"
        assert process.wait(60) == 0, output(process)
        statuses = [answer.split(b" ", 2)[1] if answer else b"nothing" for answer in answers]
        assert statuses == [b"200"] * COUNT, statuses
        assert all(b'"predictions"' in answer for answer in answers)
        log = output(process)
        finished = "Application shutdown complete" if server == "uvicorn" else "Granian shutdown completed"
        assert log.index("draining") < log.rindex(finished)
    finally:
        stop(process)


def _not_ready_within(url: str, seconds: float) -> bool:
    """/health/ready answers 503, or the server no longer accepts connections, within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=0.5).status_code == 503:
                return True
        except httpx.TransportError:
            return True
        time.sleep(0.02)
    return False


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    with sock:
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)
