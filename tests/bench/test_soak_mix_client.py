"""The soak's request mix and its HTTP client: schedules, bodies, request bytes, response heads, and a
real keep-alive exchange with an in-process asyncio server (no mocks)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.soak.client import Connection, HttpError, parse_head
from bench.soak.load import Budget, LoadPlan, run_load, version_of
from bench.soak.mix import Kind, build_kinds, http_request, pixels_to_image, schedule


def kinds(*weights: int) -> list[Kind]:
    return [Kind(f"k{i}", f"/k{i}", w, 1, (b"{}",)) for i, w in enumerate(weights)]


def test_schedule_holds_the_mix_exactly_in_a_seeded_order() -> None:
    order = schedule(kinds(40, 25, 10, 15, 10), seed=3)
    assert Counter(order) == {0: 40, 1: 25, 2: 10, 3: 15, 4: 10}
    assert order == schedule(kinds(40, 25, 10, 15, 10), seed=3)
    assert order != schedule(kinds(40, 25, 10, 15, 10), seed=4)
    assert Counter(schedule(kinds(1, 1), seed=0, length=10)) == {0: 5, 1: 5}
    with pytest.raises(ValueError, match="zero"):
        schedule(kinds(0, 0), seed=0)


def test_pixels_become_a_grey_image_of_either_polarity() -> None:
    pixels = [16.0 if i == 9 else 0.0 for i in range(64)]  # row 1, column 1 fully inked
    image = pixels_to_image(pixels, scale=4)
    assert len(image) == 32 and all(len(row) == 32 for row in image)
    assert image[4][4] == image[7][7] == 255 and image[3][4] == image[8][8] == 0
    inverted = pixels_to_image(pixels, scale=4, invert=True)
    assert inverted[4][4] == 0 and inverted[0][0] == 255


def test_request_bytes() -> None:
    raw = http_request("POST", "/predict/heart", "127.0.0.1:8000", b'{"a":1}', {"Authorization": "Bearer x"})
    assert raw == (
        b"POST /predict/heart HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: Bearer x\r\n"
        b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
    )
    assert http_request("GET", "/models", "h", None) == b"GET /models HTTP/1.1\r\nHost: h\r\n\r\n"


def test_response_heads() -> None:
    assert parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n") == (200, 12, True)
    assert parse_head(b"HTTP/1.1 422 Unprocessable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n") == (
        422,
        0,
        False,
    )
    assert parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n") == (200, 1, False)
    for head in (
        b"SSH-2.0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ):
        with pytest.raises(HttpError):
            parse_head(head)


def test_version_is_read_from_the_end_of_an_answer() -> None:
    assert version_of(b'{"predictions":[{"digit":1}],"version":"20261122T0-abc","threshold":0.5}') == "20261122T0-abc"
    assert version_of(b'{"probability":0.5}') is None


def test_budget_bounds_the_requests() -> None:
    budget = Budget(2)
    assert [budget.take(), budget.take(), budget.take()] == [True, True, False]


async def serve_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive server answering each request with its path and body; `/bad` gets a 500 and `/close`
    closes the connection after answering."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            path = lines[0].split()[1]
            length = next((int(v) for n, _, v in (ln.partition(": ") for ln in lines) if n == "Content-Length"), 0)
            body = await reader.readexactly(length)
            answer = json.dumps({"path": path, "body": body.decode(), "version": "v1"}, separators=(",", ":")).encode()
            status = b"500 Internal Server Error" if path == "/bad" else b"200 OK"
            close = path == "/close"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\ncontent-length: %d\r\n" % len(answer)
                + (b"connection: close\r\n" if close else b"")
                + b"\r\n"
                + answer
            )
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def test_keep_alive_exchange_with_a_real_server() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(serve_json, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            connection = await Connection.connect("127.0.0.1", port)
            for i in range(3):
                status, body = await connection.request(http_request("POST", f"/p{i}", "h", b'{"n":%d}' % i))
                assert status == 200 and json.loads(body) == {"path": f"/p{i}", "body": f'{{"n":{i}}}', "version": "v1"}
            assert connection.requests == 3 and connection.open
            status, _ = await connection.request(http_request("GET", "/close", "h", None))
            assert status == 200 and not connection.open

    asyncio.run(scenario())


def test_the_load_counts_answers_and_errors_per_kind() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(serve_json, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        mix = [Kind("good", "/good", 3, 1, (b"{}",)), Kind("bad", "/bad", 1, 1, (b"{}",))]
        async with server:
            plan = LoadPlan("127.0.0.1", port, mix, 4, 5.0, 200, requests_per_connection=10)
            results = await run_load(plan, lambda ports: dict.fromkeys(ports, 7), time.monotonic())
        assert results.requests == 200  # the budget ends the run before the time does
        good, bad = results.kinds["good"], results.kinds["bad"]
        assert good.versions == {"v1": len(good.latencies_s)} and not good.errors
        assert set(bad.errors) == {"HTTP 500"} and not bad.latencies_s
        assert len(good.latencies_s) + bad.errors["HTTP 500"] == 200
        assert 130 <= len(good.latencies_s) <= 170  # 3:1, each client starting at its own place in the order
        assert results.errors == bad.errors["HTTP 500"] and results.per_worker == {7: 200}
        assert results.connections >= 20 and results.unmapped_connections == 0  # each reopened every 10 requests

    asyncio.run(scenario())


def test_kinds_are_built_from_the_reference_inputs(small_artifacts: Path) -> None:
    built = {k.name: k for k in build_kinds(small_artifacts, batch_rows=5)}
    assert sorted(built) == ["digit_batch", "digit_image", "digit_pixels", "heart", "heart_batch"]
    assert sum(k.weight for k in built.values()) == 100
    assert all(len(json.loads(b)["instances"]) == 5 for b in built["heart_batch"].bodies + built["digit_batch"].bodies)
    assert all(set(json.loads(b)) == {"image"} for b in built["digit_image"].bodies)
    assert all(len(json.loads(b)["pixels"]) == 64 for b in built["digit_pixels"].bodies)
