"""The V2 routes are in /schema/openapi.json with their bodies, the protocol's error shape, and examples
that the service itself accepts."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

V2_ROUTES = [
    ("get", "/v2"),
    ("get", "/v2/health/live"),
    ("get", "/v2/health/ready"),
    ("get", "/v2/models/{name}"),
    ("get", "/v2/models/{name}/versions/{version}"),
    ("get", "/v2/models/{name}/ready"),
    ("get", "/v2/models/{name}/versions/{version}/ready"),
    ("post", "/v2/models/{name}/infer"),
    ("post", "/v2/models/{name}/versions/{version}/infer"),
]


@pytest.fixture(scope="module")
def schema(client: TestClient) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(("method", "path"), V2_ROUTES)
def test_every_v2_route_is_documented_with_its_errors(schema: dict[str, Any], method: str, path: str) -> None:
    operation = schema["paths"][path][method]
    assert "200" in operation["responses"]
    assert sorted(p["name"] for p in operation.get("parameters", [])) == sorted(
        name for name in ("name", "version") if "{" + name + "}" in path
    )
    if "{name}" in path:  # the model names as examples, so that readers and fuzzers reach a model
        (name,) = [p for p in operation["parameters"] if p["name"] == "name"]
        assert [example["value"] for example in name["examples"].values()] == ["heart", "digits"]
    for status, response in operation["responses"].items():
        if status.startswith("4") and "content" in response:
            assert response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/V2ErrorBody"


def test_infer_documents_request_response_and_statuses(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/v2/models/{name}/infer"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert [part["$ref"] for part in body.get("allOf", [body])] == ["#/components/schemas/InferenceRequest"]
    success = operation["responses"]["200"]["content"]["application/json"]
    assert success["schema"]["$ref"] == "#/components/schemas/InferenceResponse"
    assert set(operation["responses"]) == {"200", "400", "404", "413", "415", "503"}
    request = schema["components"]["schemas"]["InferenceRequest"]
    assert request["required"] == ["inputs"]
    assert request["additionalProperties"] is False


def test_health_answers_are_documented_without_a_body(schema: dict[str, Any]) -> None:
    responses = schema["paths"]["/v2/health/ready"]["get"]["responses"]
    assert set(responses) == {"200", "400"}
    assert all("content" not in response for response in responses.values())


def test_the_documented_request_examples_are_accepted(schema: dict[str, Any], client: TestClient) -> None:
    body = schema["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    examples = body["schema"]["examples"]
    assert len(examples) == 3
    for example in examples:
        model = "digits" if example["inputs"][0]["name"] == "pixels" else "heart"
        response = client.post(f"/v2/models/{model}/infer", json=example)
        assert response.status_code == 200, response.text
        assert response.json()["id" if "id" in example else "model_name"] == example.get("id", model)
