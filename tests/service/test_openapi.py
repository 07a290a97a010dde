"""OpenAPI at /schema: every route documented with its body, parameters, responses and examples."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from service.contract import HEART_EXAMPLE, HEART_FEATURE_NAMES


@pytest.fixture(scope="module")
def schema(client: TestClient) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


ROUTES = {
    ("post", "/predict/heart"): "HeartPatient",
    ("post", "/predict/heart/batch"): "HeartBatch",
    ("post", "/predict/digit"): "DigitInput",
    ("post", "/predict/digit/batch"): "DigitBatch",
    ("get", "/models"): None,
    ("get", "/models/{name}"): None,
    ("get", "/health/live"): None,
    ("get", "/health/ready"): None,
}


@pytest.mark.parametrize(("method", "path"), list(ROUTES))
def test_every_route_has_a_success_response_with_an_example(schema: dict[str, Any], method: str, path: str) -> None:
    operation = schema["paths"][path][method]
    success = operation["responses"]["200"]["content"]["application/json"]
    assert "$ref" in success["schema"]
    assert success["examples"], "a response example"


@pytest.mark.parametrize(("method", "path"), [key for key, body in ROUTES.items() if body])
def test_every_prediction_route_documents_its_body_and_errors(schema: dict[str, Any], method: str, path: str) -> None:
    operation = schema["paths"][path][method]
    body = operation["requestBody"]["content"]["application/json"]
    refs = [part["$ref"] for part in body["schema"].get("allOf", [body["schema"]])]
    assert refs == [f"#/components/schemas/{ROUTES[method, path]}"]
    assert body["schema"]["examples"], "a request example"
    for status in ("400", "413", "415", "422"):
        error = operation["responses"][status]["content"]["application/json"]
        assert error["schema"]["$ref"] == "#/components/schemas/ErrorBody"
        assert error["examples"]


def test_heart_example_is_the_tutorial_patient_and_fields_carry_their_ranges(schema: dict[str, Any]) -> None:
    body = schema["paths"]["/predict/heart"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["examples"][0] == HEART_EXAMPLE
    patient = schema["components"]["schemas"]["HeartPatient"]
    assert list(patient["properties"]) == list(HEART_FEATURE_NAMES)
    assert patient["required"] == ["age", "sex"]
    assert patient["properties"]["age"]["minimum"] == 1
    assert patient["properties"]["age"]["maximum"] == 120
    assert patient["properties"]["cp"]["anyOf"][0]["enum"] == [1, 2, 3, 4]
    assert patient["properties"]["cp"]["anyOf"][1] == {"type": "null"}
    assert patient["properties"]["ca"]["anyOf"][0]["minimum"] == 0  # a 0 bound is documented too
    assert patient["additionalProperties"] is False


def test_threshold_is_documented_on_heart_routes_only(schema: dict[str, Any]) -> None:
    for path in ("/predict/heart", "/predict/heart/batch"):
        parameters = {p["name"]: p for p in schema["paths"][path]["post"]["parameters"]}
        assert set(parameters) == {"threshold", "explain"}
        parameter = parameters["threshold"]
        assert parameter["in"] == "query"
        assert parameter["schema"]["exclusiveMinimum"] == 0
        assert parameter["schema"]["exclusiveMaximum"] == 1
    for path in ("/predict/digit", "/predict/digit/batch"):
        names = [p["name"] for p in schema["paths"][path]["post"]["parameters"]]
        assert names == ["explain"]  # explanations for every model; a threshold for heart only


def test_documented_examples_are_accepted_by_the_service(client: TestClient, schema: dict[str, Any]) -> None:
    """The request examples in the docs are real requests: each one gets a 200."""
    for (method, path), body_type in ROUTES.items():
        if not body_type:
            continue
        body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]
        for example in body["schema"]["examples"]:
            response = client.post(path, json=example)
            assert response.status_code == 200, (path, response.text)


def test_swagger_ui_is_served(client: TestClient) -> None:
    response = client.get("/schema/swagger")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
