"""Hostile input a schema fuzzer does not make, sent over a real socket to `python -m service`.

Each case gets its documented answer: 400 for a body that is not JSON (NaN/Infinity literals, an empty
body, bytes that are not UTF-8), 422 for JSON of the wrong shape (naming the field), 413 for a body
over `SERVICE_MAX_BODY_BYTES`, 415 for a content type other than JSON; errors in the one shape
`{"error": {"code", "message", "fields": [...]}}`. After every case the same worker process is still
ready and still predicts. The suite writes `bench-results/hostile-input.md` (input → status).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from service.contract import HEART_EXAMPLE
from tests.reliability.live import LiveService, assert_error_shape, write_table

JSON = {"content-type": "application/json"}
MB = 1024 * 1024
MAX_BODY = 4 * MB  # SERVICE_MAX_BODY_BYTES's default, which the live service runs with
PIXELS = [0, 0, 5, 13, 9, 1, 0, 0] * 8


def drawn_image(height: int, width: int) -> list[list[int]]:
    """A light ring (a "0") on a dark background, filling the middle of a height × width image."""
    image = [[0] * width for _ in range(height)]
    top, bottom, left, right = height // 5, height - height // 5, width // 4, width - width // 4
    pen = max(1, min(height, width) // 12)
    for y in range(top, bottom):
        for x in range(left, right):
            if y < top + pen or y >= bottom - pen or x < left + pen or x >= right - pen:
                image[y][x] = 255
    return image


def nested(depth: int, closed: bool = True) -> bytes:
    return b"[" * depth + (b"]" * depth if closed else b"")


def patient(**fields: Any) -> bytes:
    return json.dumps({**HEART_EXAMPLE, **fields}).encode()


def literal(field: str, text: bytes) -> bytes:
    """The example patient with `field` set to a raw JSON text (a literal json.dumps would not write)."""
    return patient(**{field: "@@"}).replace(b'"@@"', text)


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer the documentation promises for it."""

    name: str
    route: str
    body: Callable[[], bytes] | bytes
    status: int
    code: str | None = None  # the error code (None for 200)
    field: str | None = None  # the field the error must name
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)

    def payload(self) -> bytes:
        return self.body() if callable(self.body) else self.body


CASES = [
    # Malformed JSON → 400
    Case("empty body", "/predict/heart", b"", 400, "malformed_json"),
    Case("whitespace only", "/predict/heart", b"  \r\n\t ", 400, "malformed_json"),
    Case("`NaN` literal", "/predict/heart", literal("chol", b"NaN"), 400, "malformed_json"),
    Case("`Infinity` literal", "/predict/heart", literal("chol", b"Infinity"), 400, "malformed_json"),
    Case("`-Infinity` literal", "/predict/heart/batch", b'{"instances": [{"age": -Infinity}]}', 400, "malformed_json"),
    Case("truncated body", "/predict/heart", patient()[:-7], 400, "malformed_json"),
    Case("not UTF-8 inside a string", "/predict/heart", literal("thal", b'"fi\xffxed"'), 400, "malformed_json"),
    Case("not UTF-8 in a key (batch)", "/predict/heart/batch", b'{"instances": [{"\xfe": 1}]}', 400, "malformed_json"),
    Case("not UTF-8 in a key (digit)", "/predict/digit", b'{"\xc3\x28": 1}', 400, "malformed_json"),
    Case("UTF-16 body", "/predict/heart", patient().decode().encode("utf-16"), 400, "malformed_json"),
    Case("UTF-8 byte-order mark", "/predict/heart", b"\xef\xbb\xbf" + patient(), 400, "malformed_json"),
    Case("lone surrogate escape `\\ud800`", "/predict/heart", literal("thal", b'"\\ud800"'), 400, "malformed_json"),
    Case("unbalanced nesting 100 deep", "/predict/heart", literal("chol", nested(100, closed=False)), 400),
    # deeper than msgspec's 1,000 levels: its syntax check gives up, the service's bracket count does not
    Case("cut short 2,000 deep", "/predict/heart", literal("chol", nested(2000, closed=False)), 400, "malformed_json"),
    Case("cut short 1,000,000 deep", "/predict/heart", b'{"chol": ' + nested(1_000_000, closed=False), 400),
    Case(
        "2,000 deep, brackets in strings",
        "/predict/heart",
        literal("chol", b'[{"s": "]]\\"["}, ' + nested(2000) + b"]"),
        422,
        "validation_failed",
        "chol",
    ),
    Case("2,000 deep, string left open", "/predict/heart", literal("chol", b'["]' + nested(2000) + b"]"), 400),
    # Nesting
    Case("`[` × 100,000 balanced, top level", "/predict/heart", nested(100_000), 422, "validation_failed", "body"),
    Case("`[` × 1,000,000 balanced in `chol`", "/predict/heart", literal("chol", nested(1_000_000)), 422, None, "chol"),
    Case(
        "objects nested 10,000 deep in an unknown field",
        "/predict/heart",
        literal("x", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        422,
        "validation_failed",
        "x",
    ),
    Case("`[` × 100,000 in `image`", "/predict/digit", b'{"image": ' + nested(100_000) + b"}", 422, None, "image.0.0"),
    # Numbers
    Case("`1e400` (overflows a double)", "/predict/heart", literal("age", b"1e400"), 422, "validation_failed", "age"),
    Case("`-1e400`", "/predict/heart", literal("oldpeak", b"-1e400"), 422, "validation_failed", "oldpeak"),
    Case("`1e-400` (underflows to 0)", "/predict/heart", literal("age", b"1e-400"), 422, "validation_failed", "age"),
    Case("5,000-digit integer", "/predict/heart", literal("age", b"9" * 5000), 422, "validation_failed", "age"),
    Case("2^64 for an integer field", "/predict/heart", literal("ca", b"18446744073709551616"), 422, None, "ca"),
    Case("5,000-digit pixel", "/predict/digit", b'{"pixels": [' + b"1" * 5000 + b"]}", 422, None, "pixels.0"),
    # Types
    Case('integer as a string `"50"`', "/predict/heart", patient(age="50"), 422, "validation_failed", "age"),
    Case('category as a string `"1"`', "/predict/heart", patient(sex="1"), 422, "validation_failed", "sex"),
    Case('ca as a string `"0"`', "/predict/heart", patient(ca="0"), 422, "validation_failed", "ca"),
    Case("boolean as a number (`age: true`)", "/predict/heart", patient(age=True), 422, None, "age"),
    Case("boolean as a 0/1 field (`fbs: false`)", "/predict/heart", patient(fbs=False), 422, None, "fbs"),
    Case("boolean as a 0/1 field (`exang: true`)", "/predict/heart", patient(exang=True), 422, None, "exang"),
    Case("number as a yes/no (`exang: 1.0`)", "/predict/heart", patient(exang=1.0), 422, None, "exang"),
    Case('string as a yes/no (`sex: "true"`)', "/predict/heart", patient(sex="true"), 422, None, "sex"),
    Case("booleans as pixels", "/predict/digit", json.dumps({"pixels": [True] * 64}).encode(), 422, None, "pixels.0"),
    # Unicode
    Case("`thal` in full-width letters", "/predict/heart", patient(thal="ｆｉｘｅｄ"), 422, None, "thal"),
    Case("`thal` with a NUL", "/predict/heart", patient(thal="fixed\u0000"), 422, None, "thal"),
    Case("`thal` with a combining accent", "/predict/heart", patient(thal="fixe\u0301d"), 422, None, "thal"),
    Case("`thal` as an emoji", "/predict/heart", patient(thal="🫀"), 422, "validation_failed", "thal"),
    Case("`thal` upper-case", "/predict/heart", patient(thal="FIXED"), 422, "validation_failed", "thal"),
    Case("unknown field `âge`", "/predict/heart", patient(**{"âge": 50}), 422, "validation_failed", "âge"),
    Case("right-to-left override key", "/predict/heart", patient(**{"\u202eega": 1}), 422, None, "\u202eega"),
    # Repeated keys: ambiguous (RFC 8259 leaves their meaning open), refused naming the key, before any
    # other fault of theirs (the value an error would name is ambiguous too)
    Case("repeated key", "/predict/heart", b'{"age": 50, "sex": 1, "age": 60}', 400, "repeated_key", "age"),
    Case("repeated key, nulls", "/predict/heart", b'{"age": 50, "sex": 1, "ca": null, "ca": null}', 400, None, "ca"),
    Case("repeated key, null then 0", "/predict/heart", b'{"age": 50, "sex": 1, "ca": null, "ca": 0}', 400, None, "ca"),
    Case(
        "repeated key in row 1",
        "/predict/heart/batch",
        b'{"instances": [{"age": 50, "sex": 1}, {"age": 50, "sex": 1, "sex": 0}]}',
        400,
        "repeated_key",
        "instances.1.sex",
    ),
    Case("repeated `instances`", "/predict/digit/batch", b'{"instances": [], "instances": [{"pixels": []}]}', 400),
    Case("repeated key, last invalid", "/predict/heart", b'{"age": 50, "sex": 1, "age": 300}', 400, None, "age"),
    # Content types → 415
    Case("no content type", "/predict/heart", patient(), 415, "unsupported_media_type", headers=()),
    Case(
        "`text/plain`",
        "/predict/heart",
        patient(),
        415,
        "unsupported_media_type",
        headers=(("content-type", "text/plain"),),
    ),
    Case(
        "`application/x-www-form-urlencoded`",
        "/predict/digit",
        b"pixels=1",
        415,
        "unsupported_media_type",
        headers=(("content-type", "application/x-www-form-urlencoded"),),
    ),
    Case(
        "`multipart/form-data`",
        "/predict/heart/batch",
        b"--x\r\n\r\n--x--",
        415,
        "unsupported_media_type",
        headers=(("content-type", "multipart/form-data; boundary=x"),),
    ),
    Case(
        "`application/json; charset=utf-16`",
        "/predict/heart",
        patient().decode().encode("utf-16"),
        415,
        "unsupported_media_type",
        headers=(("content-type", "application/json; charset=utf-16"),),
    ),
    Case(
        "`application/jsonp`",
        "/predict/heart",
        patient(),
        415,
        "unsupported_media_type",
        headers=(("content-type", "application/jsonp"),),
    ),
    # Size
    Case(
        "50 MB body (Content-Length)",
        "/predict/heart/batch",
        lambda: b'{"instances": [' + b"1," * (25 * MB) + b"1]}",
        413,
        "body_too_large",
    ),
    Case(
        "body 1 byte over the 4 MiB limit",
        "/predict/digit/batch",
        lambda: b'{"instances": []' + b" " * (MAX_BODY + 1 - 17) + b"}",
        413,
        "body_too_large",
    ),
    Case(
        "10,000 patients (limit 1,000)",
        "/predict/heart/batch",
        lambda: json.dumps({"instances": [HEART_EXAMPLE] * 10_000}).encode(),
        422,
        "validation_failed",
        "instances",
    ),
    Case(
        "10,000 digits (limit 1,000)",
        "/predict/digit/batch",
        lambda: json.dumps({"instances": [{"pixels": PIXELS}] * 10_000}).encode(),
        422,
        "validation_failed",
        "instances",
    ),
    Case(
        "1,000 patients (at the limit)",
        "/predict/heart/batch",
        lambda: json.dumps({"instances": [HEART_EXAMPLE] * 1000}).encode(),
        200,
    ),
    Case(
        "316×316 image (99,856 pixels)",
        "/predict/digit",
        lambda: json.dumps({"image": drawn_image(316, 316)}).encode(),
        200,
    ),
    Case(
        "512×512 image (the largest)",
        "/predict/digit",
        lambda: json.dumps({"image": drawn_image(512, 512)}).encode(),
        200,
    ),
    Case(
        "513×513 image",
        "/predict/digit",
        lambda: json.dumps({"image": drawn_image(513, 513)}).encode(),
        422,
        "validation_failed",
        "image.0",
    ),
    Case(
        "100×1,000 image (100,000 pixels, rows too long)",
        "/predict/digit",
        lambda: json.dumps({"image": drawn_image(100, 1000)}).encode(),
        422,
        "validation_failed",
        "image.0",
    ),
    Case(
        "1,000×100 image (100,000 pixels, too many rows)",
        "/predict/digit",
        lambda: json.dumps({"image": drawn_image(1000, 100)}).encode(),
        422,
        "validation_failed",
        "image",
    ),
    Case("7×7 image", "/predict/digit", json.dumps({"image": drawn_image(7, 7)}).encode(), 422, None, "image.0"),
]

RESULTS: list[tuple[str, ...]] = []


def _describe(response_status: int, error: dict[str, Any] | None) -> str:
    if error is None:
        return str(response_status)
    fields = ", ".join(f"`{entry['field']}`" for entry in error["fields"])
    return f"{response_status} `{error['code']}`" + (f" naming {fields}" if fields else "")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_gets_its_documented_answer_and_the_worker_survives(
    live_service: LiveService, case: Case
) -> None:
    body = case.payload()
    response = live_service.client.post(case.route, content=body, headers=dict(case.headers))
    error = None
    if case.status == 200:
        assert response.status_code == 200, response.text[:500]
        answer = response.json()
        rows = answer.get("predictions", [answer])
        assert rows and all(0.0 <= row["probability"] <= 1.0 for row in rows)
    else:
        error = assert_error_shape(response, case.status, case.field)
        if case.code is not None:
            assert error["code"] == case.code, error
    size = f"{len(body) / MB:.1f} MB" if len(body) >= MB else f"{len(body):,} B"
    RESULTS.append((case.name, f"`{case.route}`", size, _describe(response.status_code, error)))
    live_service.assert_still_healthy()


def read_response(connection: socket.socket) -> str:
    """One HTTP/1.1 response, headers and a Content-Length body, however the packets fall."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := connection.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length and (chunk := connection.recv(65536)):
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_a_body_announced_over_the_limit_is_refused_before_it_is_sent(live_service: LiveService) -> None:
    """`Content-Length: 52428800` and no body at all: the 413 comes back at once, so the service
    never waited for (or buffered) the 50 MB."""
    host, port = live_service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /predict/heart HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n"
        )
        answer = read_response(connection)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"code":"body_too_large"' in answer
    RESULTS.append(("50 MB announced, none sent", "`/predict/heart`", "0 B", "413 `body_too_large` at once"))
    live_service.assert_still_healthy()


def test_a_streamed_body_is_cut_off_at_the_limit(live_service: LiveService) -> None:
    """A chunked body announces no length: the service counts while reading and stops at 4 MiB."""

    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(50):
            yield b"1," * (MB // 2)

    response = live_service.client.post("/predict/heart/batch", content=chunks(), headers=JSON)
    error = assert_error_shape(response, 413)
    assert error["code"] == "body_too_large"
    RESULTS.append(("50 MB chunked, no Content-Length", "`/predict/heart/batch`", "50 MB", _describe(413, error)))
    live_service.assert_still_healthy()


def test_admin_reload_without_the_token_is_401(live_service: LiveService) -> None:
    for headers in ({}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": "Basic abc"}):
        response = live_service.client.post("/admin/reload", headers=headers)
        error = assert_error_shape(response, 401)
        assert error["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    RESULTS.append(("no or wrong bearer token", "`/admin/reload`", "0 B", _describe(401, error)))
    live_service.assert_still_healthy()


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    write_table(
        "hostile-input",
        "Hostile input over a real socket (the worker was still ready and predicting after each)",
        ("input", "route", "body", "answer"),
        RESULTS,
    )
