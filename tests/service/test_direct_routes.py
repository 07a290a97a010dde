"""The prediction routes answered directly (service.app's direct routes) answer exactly as through
Litestar's router: `/predict/heart/` (trailing slash) takes Litestar's path to the same endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.contract import HEART_EXAMPLE
from service.settings import Settings
from tests.service.processes import total

JSON_TYPE = {"content-type": "application/json"}
DIGIT = {"pixels": [0.0] * 30 + [16.0] * 4 + [0.0] * 30}

# (route, body, headers, query): valid requests and one of each class of client error.
CASES: list[tuple[str, Any, dict[str, str], str]] = [
    ("/predict/heart", json.dumps(HEART_EXAMPLE), JSON_TYPE, ""),
    ("/predict/heart", json.dumps(HEART_EXAMPLE), JSON_TYPE, "?threshold=0.9"),
    ("/predict/heart", json.dumps({**HEART_EXAMPLE, "age": 400}), JSON_TYPE, ""),
    ("/predict/heart", json.dumps(HEART_EXAMPLE), JSON_TYPE, "?threshold=2"),
    ("/predict/heart", "{", JSON_TYPE, ""),
    ("/predict/heart", json.dumps(HEART_EXAMPLE), {"content-type": "text/plain"}, ""),
    ("/predict/heart/batch", json.dumps({"instances": [HEART_EXAMPLE] * 3}), JSON_TYPE, ""),
    ("/predict/heart/batch", json.dumps({"instances": [HEART_EXAMPLE, {"age": 50}]}), JSON_TYPE, ""),
    ("/predict/digit", json.dumps(DIGIT), JSON_TYPE, ""),
    ("/predict/digit", json.dumps({"pixels": [1] * 63}), JSON_TYPE, ""),
    ("/predict/digit/batch", json.dumps({"instances": [DIGIT, DIGIT]}), JSON_TYPE, ""),
    ("/predict/digit/batch", json.dumps({"instances": []}), JSON_TYPE, ""),
]


@pytest.fixture(scope="module")
def direct_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(app=create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_direct_table_holds_exactly_the_prediction_routes(direct_client: TestClient) -> None:
    app = direct_client.app
    direct_routes = app.asgi_handler.direct_routes  # type: ignore[attr-defined]
    predictions = ("/predict/heart", "/predict/heart/batch", "/predict/digit", "/predict/digit/batch")
    assert set(direct_routes) == {("POST", path) for path in predictions}
    declared = {route.path for route in app.routes}
    assert {path for _, path in direct_routes} <= declared


@pytest.mark.parametrize(("route", "body", "headers", "query"), CASES)
def test_direct_and_routed_answers_are_identical(
    direct_client: TestClient, route: str, body: str, headers: dict[str, str], query: str
) -> None:
    direct = direct_client.post(route + query, content=body, headers=headers)
    routed = direct_client.post(route + "/" + query, content=body, headers=headers)
    assert direct.status_code == routed.status_code
    assert direct.headers["content-type"] == routed.headers["content-type"]
    assert direct.json() == routed.json()
    assert direct.headers["x-request-id"] != routed.headers["x-request-id"]  # both went through the app layer


def test_body_over_the_limit_is_413_on_both_paths(small_artifacts: Any) -> None:
    settings = Settings(artifacts_dir=small_artifacts, max_body_bytes=1024)
    with TestClient(app=create_app(settings)) as client:
        big = json.dumps({"instances": [HEART_EXAMPLE] * 50})
        for route in ("/predict/heart/batch", "/predict/heart/batch/"):
            response = client.post(route, content=big, headers=JSON_TYPE)
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "body_too_large"


def test_an_unexpected_error_is_a_500_in_the_error_shape_and_the_app_keeps_serving(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(app=create_app(settings), raise_server_exceptions=False) as client:
        model = client.app.state.plane.get("heart").model
        original = model.answer_batch

        def broken(outputs: Any, decisions: Any, matrix: Any, threshold: float) -> Any:
            raise RuntimeError(f"secret {matrix.tolist()!r}")  # a bug whose message holds request data

        model.answer_batch = broken
        try:
            body = json.dumps({"instances": [{**HEART_EXAMPLE, "chol": 437}]})
            response = client.post("/predict/heart/batch", content=body, headers=JSON_TYPE)
        finally:
            model.answer_batch = original
        assert response.status_code == 500
        assert response.json() == {"error": {"code": "internal_error", "message": "internal error", "fields": []}}
        assert "secret" not in caplog.text and "437" not in caplog.text
        assert any(getattr(r, "error_type", None) == "RuntimeError" for r in caplog.records)
        exposition = client.get("/metrics").text
        assert total(exposition, "litestar_requests_error_total", path="/predict/heart/batch", status_code="500") == 1
        again = client.post("/predict/heart/batch", content=body, headers=JSON_TYPE)
        assert again.status_code == 200
