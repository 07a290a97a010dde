"""The Open Inference Protocol's request parameter `explain`: the output tensor `contributions` holds what
/predict's `?explain=true` gives for the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
from litestar.testing import TestClient

from service.contract import HEART_EXAMPLE, HEART_FEATURE_NAMES


def heart_inputs(patients: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "shape": [len(patients), 1],
            "datatype": "BYTES" if name == "thal" else "FP64",
            "data": [patient.get(name) for patient in patients],
        }
        for name in HEART_FEATURE_NAMES
    ]


def test_heart_contributions_equal_the_rest_routes(client: TestClient, heart_reference: dict[str, Any]) -> None:
    patients = [HEART_EXAMPLE, *heart_reference["inputs"][:2]]
    body = {"inputs": heart_inputs(patients), "parameters": {"explain": True}}
    response = client.post("/v2/models/heart/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["contributions"]["shape"] == [3, len(HEART_FEATURE_NAMES)]
    assert outputs["contributions"]["datatype"] == "FP64"
    ours = np.array(outputs["contributions"]["data"]).reshape(3, -1)
    rest = client.post("/predict/heart/batch?explain=true", json={"instances": patients}).json()["predictions"]
    expected = np.array([[row["explanation"]["contributions"][name] for name in HEART_FEATURE_NAMES] for row in rest])
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_contributions_only_when_asked(client: TestClient) -> None:
    body = {"inputs": heart_inputs([HEART_EXAMPLE])}
    plain = client.post("/v2/models/heart/infer", json=body).json()
    assert "contributions" not in [output["name"] for output in plain["outputs"]]
    asked = {**body, "outputs": [{"name": "contributions"}]}
    response = client.post("/v2/models/heart/infer", json=asked)
    assert response.status_code == 400 and "contributions" in response.text
    chosen = {**asked, "parameters": {"explain": True}}
    answer = client.post("/v2/models/heart/infer", json=chosen).json()
    assert [output["name"] for output in answer["outputs"]] == ["contributions"]


def test_a_bad_explain_parameter_is_refused_naming_it(client: TestClient) -> None:
    for value in ("true", 1, None, "yes"):
        body = {"inputs": heart_inputs([HEART_EXAMPLE]), "parameters": {"explain": value}}
        response = client.post("/v2/models/heart/infer", json=body)
        assert response.status_code == 400, (value, response.text)
        assert "explain" in response.json()["error"]


def test_digit_maps(client: TestClient, digits_reference: dict[str, Any]) -> None:
    pixels = digits_reference["inputs"][0]["pixels"]
    body = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": pixels}]}
    answer = client.post("/v2/models/digits/infer", json={**body, "parameters": {"explain": True}}).json()
    contributions = next(output for output in answer["outputs"] if output["name"] == "contributions")
    assert contributions["shape"] == [1, 8, 8]
    rest = client.post("/predict/digit?explain=true", json={"pixels": pixels}).json()["explanation"]["map"]
    np.testing.assert_allclose(np.array(contributions["data"]).reshape(8, 8), np.array(rest), atol=1e-6)


def test_metadata_says_how_to_get_contributions(client: TestClient) -> None:
    """`contributions` is not among the outputs (a request without explain does not give it); the metadata's
    properties name the parameter and the output it adds, with its datatype and shape."""
    for model, shape in (("heart", [-1, len(HEART_FEATURE_NAMES)]), ("digits", [-1, 8, 8])):
        metadata = client.get(f"/v2/models/{model}").json()
        assert "contributions" not in [output["name"] for output in metadata["outputs"]]
        explain = metadata["properties"]["explain"]
        assert "'contributions'" in explain and "FP64" in explain and str(shape) in explain, explain
