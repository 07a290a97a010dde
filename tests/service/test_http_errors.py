"""The HTTP surface's errors: one shape, the right status, and never a 5xx for anything a client sends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.contract import HEART_EXAMPLE
from service.settings import Settings

PREDICT_ROUTES = ["/predict/heart", "/predict/heart/batch", "/predict/digit", "/predict/digit/batch"]


@pytest.mark.parametrize("route", PREDICT_ROUTES)
@pytest.mark.parametrize(
    "body", [b"{", b"", b"not json", b'{"age": 50,}', b"\xff\xfe", b'{"age": 50} trailing', b"{'age': 50}"]
)
def test_malformed_json_is_400(client: TestClient, expect_error: Any, route: str, body: bytes) -> None:
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    expect_error(response, 400, "malformed_json")


@pytest.mark.parametrize("route", PREDICT_ROUTES)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", None, "application/json; charset=latin-1"],
)
def test_wrong_content_type_is_415(client: TestClient, expect_error: Any, route: str, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(route, content=json.dumps(HEART_EXAMPLE).encode(), headers=headers)
    expect_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/problem+json"]
)
def test_json_content_type_variants_are_accepted(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/predict/heart", content=json.dumps(HEART_EXAMPLE).encode(), headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text


def test_body_over_the_limit_is_413(small_artifacts: Any, expect_error: Any) -> None:
    from service.app import create_app

    with TestClient(app=create_app(Settings(artifacts_dir=small_artifacts, max_body_bytes=2048))) as small:
        big = {"instances": [HEART_EXAMPLE] * 40}  # about 7 kB
        response = small.post("/predict/heart/batch", json=big)
        expect_error(response, 413, "body_too_large")
        # under the limit still works
        assert small.post("/predict/heart/batch", json={"instances": [HEART_EXAMPLE] * 5}).status_code == 200


def test_body_over_the_limit_without_content_length_is_413(small_artifacts: Any, expect_error: Any) -> None:
    """A chunked body announces no length: the limit is enforced while reading."""
    from service.app import create_app

    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 500

    with TestClient(app=create_app(Settings(artifacts_dir=small_artifacts, max_body_bytes=2048))) as small:
        response = small.post("/predict/heart", content=chunks(), headers={"content-type": "application/json"})
        expect_error(response, 413, "body_too_large")


@pytest.mark.parametrize("path", ["/nope", "/predict", "/predict/cats", "/models/heart/extra", "/health"])
def test_unknown_route_is_404(client: TestClient, expect_error: Any, path: str) -> None:
    expect_error(client.get(path), 404, "not_found")
    expect_error(client.post(path, json={}), 404, "not_found")


def test_wrong_method_is_405_with_allow(client: TestClient, expect_error: Any) -> None:
    response = client.get("/predict/heart")
    expect_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    expect_error(client.delete("/models"), 405, "method_not_allowed")


def test_unknown_model_is_404(client: TestClient, expect_error: Any) -> None:
    error = expect_error(client.get("/models/cats"), 404, "model_not_found")
    assert "heart" in error["message"]


ODD_BODIES = [
    b"null",
    b"0",
    b"[]",
    b'"string"',
    b"{}",
    b'{"instances": null}',
    b'{"instances": [null]}',
    b'{"instances": [[]]}',
    b'{"instances": [{}]}',
    b'{"age": 1e400, "sex": 0}',
    b'{"age": -1e400, "sex": 0}',
    b'{"age": 12345678901234567890123456789, "sex": 0}',
    b'{"age": 50, "sex": 18446744073709551616}',
    b'{"image": [[]]}',
    b'{"image": [[1e400]]}',
    b'{"pixels": {"0": 1}}',
    b'{"\\u0000": 1}',
    b'{"age": "\\ud800", "sex": 0}',
    b"[" * 2000 + b"]" * 2000,
]


@pytest.mark.parametrize("route", PREDICT_ROUTES)
@pytest.mark.parametrize("body", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_odd_bodies_never_give_5xx(client: TestClient, route: str, body: bytes) -> None:
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), (response.status_code, response.text)
    assert set(response.json()) == {"error"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from([*HEART_EXAMPLE, "instances", "pixels", "image", "x"])


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    route=st.sampled_from(PREDICT_ROUTES),
    body=st.dictionaries(FIELDS, JSON_VALUES, max_size=6) | JSON_VALUES,
    query=st.sampled_from(["", "?threshold=0.5", "?threshold=x", "?a=b"]),
)
def test_random_json_never_gives_5xx(client: TestClient, route: str, body: Any, query: str) -> None:
    response = client.post(
        route + query, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code in (200, 400, 422), (response.status_code, response.text)
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"code", "message", "fields"}
