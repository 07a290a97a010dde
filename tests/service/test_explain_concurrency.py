"""Explanations run off the event loop: while a real `python -m service` computes a queue of explanations,
a plain /predict/heart sent after all of them answers before the last of them (on the event loop, each
explanation held up every request of the worker, so the plain one came back last)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.contract import HEART_EXAMPLE
from tests.service.processes import start, stop, wait_ready

EXPLAIN_REQUESTS = 4
# Patients with most fields missing differ from every (complete) background row in nearly all 13 features:
# up to 2^13 coalition rows per background row, a long explanation each.
SPARSE = [{"age": 40 + index, "sex": index % 2} for index in range(4)]


@pytest.fixture(scope="module")
def service(small_artifacts: Path) -> Iterator[tuple[str, int]]:
    process, url = start(small_artifacts, SERVICE_ACCESS_LOG="false", SERVICE_WORKERS="1")
    try:
        wait_ready(process, url)
        parts = urlsplit(url)
        yield parts.hostname or "127.0.0.1", parts.port or 80
    finally:
        stop(process)


def request(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


def test_a_plain_prediction_answers_while_explanations_compute(service: tuple[str, int]) -> None:
    finished: list[str] = []  # names in the order their responses completed (list.append is atomic)
    answers: dict[str, bytes] = {}

    def read(name: str, sock: socket.socket) -> None:
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        sock.close()
        answers[name] = b"".join(chunks)
        finished.append(name)

    sockets = {}
    explain = request("/predict/heart/batch?explain=true", {"instances": SPARSE})
    for index in range(EXPLAIN_REQUESTS):  # every explanation request fully sent before the plain one
        sockets[f"explain-{index}"] = sock = socket.create_connection(service, timeout=120)
        sock.sendall(explain)
    sockets["plain"] = sock = socket.create_connection(service, timeout=120)
    sock.sendall(request("/predict/heart", HEART_EXAMPLE))
    readers = [threading.Thread(target=read, args=item) for item in sockets.items()]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=180)

    assert sorted(finished) == sorted(sockets), f"unanswered: {set(sockets) - set(finished)}"
    for name, answer in answers.items():
        assert answer.startswith(b"HTTP/1.1 200"), (name, answer[:200])
        assert (b'"explanation"' in answer) == name.startswith("explain"), name
    assert finished.index("plain") <= EXPLAIN_REQUESTS - 2, finished  # at least two explanations still computing
