"""The prediction routes answered directly (service.asgi's direct routes) answer exactly as through
Litestar's router: `/predict/heart/` (trailing slash) takes Litestar's path to the same endpoint; the
Open Inference Protocol's infer routes are compared with an app whose direct routes are switched off
(any spelling of a templated route is answered directly)."""

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
from tests.v2.binary import frame
from tests.v2.tensors import digits_inputs, heart_inputs

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


def test_the_direct_tables_hold_exactly_the_prediction_routes(direct_client: TestClient) -> None:
    app = direct_client.app
    layer = app.asgi_handler  # type: ignore[attr-defined]
    predictions = ("/predict/heart", "/predict/heart/batch", "/predict/digit", "/predict/digit/batch")
    served = ("/v2/models/heart/infer", "/v2/models/digits/infer")  # V2's usual spelling, per served model
    assert set(layer.exact) == {("POST", path) for path in (*predictions, *served)}
    assert layer.exact[("POST", served[0])].path_params == {"name": "heart"}
    infer = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
    assert set(layer.templated) == {("POST", template) for template in infer}
    declared = {route.path_format for route in app.routes}
    assert {route.template for route in [*layer.exact.values(), *layer.templated.values()]} <= declared


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


# ---- the Open Inference Protocol's infer routes ------------------------------------------------------

INFER = "/v2/models/heart/infer"
NO_TYPE: dict[str, str] = {}
ONE = heart_inputs([HEART_EXAMPLE], nested=False)
BATCH = heart_inputs([HEART_EXAMPLE, {**HEART_EXAMPLE, "ca": None}], nested=True)


def _v2(inputs: list[dict[str, Any]], **envelope: Any) -> str:
    return json.dumps({"inputs": inputs, **envelope})


def _replace(inputs: list[dict[str, Any]], name: str, **fields: Any) -> list[dict[str, Any]]:
    return [{**tensor, **fields} if tensor["name"] == name else tensor for tensor in inputs]


BINARY_BODY, BINARY_HEADERS = frame(ONE, {"age", "thal"}, parameters={"binary_data_output": True})
V2_CASES: list[tuple[str, str | bytes, dict[str, str]]] = [
    (INFER, _v2(ONE), JSON_TYPE),
    (INFER, _v2(ONE), NO_TYPE),  # tritonclient sends no content type
    (INFER, _v2(BATCH, id="r1", parameters={"threshold": 0.3}), JSON_TYPE),
    (INFER, _v2(ONE, outputs=[{"name": "label", "parameters": {"binary_data": True}}]), JSON_TYPE),
    (INFER, BINARY_BODY, BINARY_HEADERS),  # binary inputs and outputs: Inference-Header-Content-Length
    (INFER, BINARY_BODY, {"Inference-Header-Content-Length": "100000"}),
    (INFER, _v2(_replace(ONE, "age", data=[400])), JSON_TYPE),
    (INFER, _v2(_replace(ONE, "thal", data=["sometimes"])), JSON_TYPE),
    (INFER, _v2(_replace(ONE, "age", datatype="BOOL")), JSON_TYPE),
    (INFER, _v2(_replace(ONE, "age", data=["80"])), JSON_TYPE),
    (INFER, _v2(_replace(ONE, "age", shape=[2, 1])), JSON_TYPE),
    (INFER, _v2([tensor for tensor in ONE if tensor["name"] != "sex"]), JSON_TYPE),
    (INFER, _v2(ONE, parameters={"threshold": 2}), JSON_TYPE),
    (INFER, _v2(ONE)[:-1] + ', "id": "a", "id": "b"}', JSON_TYPE),  # a repeated key
    (INFER, "{", JSON_TYPE),
    (INFER, _v2(ONE), {"content-type": "text/plain"}),
    ("/v2/models/nothing/infer", _v2(ONE), JSON_TYPE),
    ("/v2/models/heart/versions/0/infer", _v2(ONE), JSON_TYPE),
    ("/v2/models/digits/infer", _v2(digits_inputs([DIGIT])), JSON_TYPE),
    ("/v2/models/digits/infer", _v2(_replace(digits_inputs([DIGIT]), "pixels", data=[1] * 63)), JSON_TYPE),
]


@pytest.fixture(scope="module")
def routed_client(settings: Settings) -> Iterator[TestClient]:
    """The same app with its direct routes switched off: every request goes through Litestar's router."""
    app = create_app(settings)
    app.asgi_handler.exact, app.asgi_handler.templated = {}, {}  # type: ignore[attr-defined]
    with TestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


def _answer(response: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [(name, value) for name, value in response.headers.raw if name.lower() != b"x-request-id"]
    return response.status_code, headers, response.content


@pytest.mark.parametrize(("route", "body", "headers"), V2_CASES)
def test_v2_direct_and_routed_answers_are_byte_identical(
    direct_client: TestClient, routed_client: TestClient, route: str, body: str | bytes, headers: dict[str, str]
) -> None:
    direct = direct_client.post(route, content=body, headers=headers)
    routed = routed_client.post(route, content=body, headers=headers)
    assert _answer(direct) == _answer(routed)
    assert "x-request-id" in direct.headers and "x-request-id" in routed.headers  # both through the app layer


def test_v2_direct_answers_carry_the_binary_header_and_the_served_version(direct_client: TestClient) -> None:
    version = direct_client.get("/v2/models/heart").json()["versions"][0]
    for route in (INFER, f"/v2/models/heart/versions/{version}/infer", f"/v2/models/heart/versions/{version}/infer/"):
        response = direct_client.post(route, content=BINARY_BODY, headers=BINARY_HEADERS)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        length = int(response.headers["inference-header-content-length"])
        answer = json.loads(response.content[:length])
        assert answer["model_version"] == version
        assert len(response.content) > length  # the binary outputs follow the JSON


def test_v2_direct_refusals_are_counted_under_the_route_template(direct_client: TestClient) -> None:
    def count(path: str, status: int) -> float:
        exposition = direct_client.get("/metrics").text
        return total(exposition, "litestar_requests_total", path=path, status_code=str(status))

    template = "/v2/models/{name}/versions/{version}/infer"
    before = count(template, 404), count("/v2/models/{name}/infer", 400)
    assert direct_client.post("/v2/models/heart/versions/0/infer", content=_v2(ONE)).status_code == 404
    assert direct_client.post(INFER, content="{").status_code == 400
    assert (count(template, 404), count("/v2/models/{name}/infer", 400)) == (before[0] + 1, before[1] + 1)
    assert count("/v2/models/heart/versions/0/infer", 404) == 0  # never the concrete path


def test_v2_unexpected_error_is_a_500_in_the_protocol_shape(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(app=create_app(settings), raise_server_exceptions=False) as client:
        model = client.app.state.plane.get("heart").model

        def broken(outputs: Any, decisions: Any) -> Any:
            raise RuntimeError(f"secret {outputs!r}")

        # a single row's outputs are built by row_output_tensors, a batch's by output_tensors: break both
        model.output_tensors = model.row_output_tensors = broken
        try:
            response = client.post(INFER, content=_v2(ONE), headers=JSON_TYPE)
        finally:
            del model.output_tensors, model.row_output_tensors  # the instance's: the class's methods again
        assert response.status_code == 500
        assert response.content == b'{"error":"internal error"}'
        assert "secret" not in caplog.text
        logged = [r for r in caplog.records if getattr(r, "error_type", None) == "RuntimeError"]
        assert logged and logged[-1].route == "/v2/models/{name}/infer"
