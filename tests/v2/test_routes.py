"""Every V2 route answers as the Open Inference Protocol says: metadata, health, readiness, inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.contract import HEART_EXAMPLE, HEART_FEATURE_NAMES
from service.settings import Settings
from tests.v2.conftest import V2Error
from tests.v2.tensors import digits_inputs, heart_inputs, output


def version_of(path: Path) -> str:
    return json.loads((path / "manifest.json").read_text())["version"]


def test_server_metadata(client: TestClient) -> None:
    response = client.get("/v2")
    assert response.status_code == 200
    assert response.json() == {"name": "modelserve", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_health_is_the_status_with_an_empty_body(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.content == b""


def test_model_metadata_lists_every_tensor_with_a_batch_dimension(client: TestClient, heart_version: Path) -> None:
    body = client.get("/v2/models/heart").json()
    assert body["name"] == "heart"
    assert body["versions"] == [version_of(heart_version)]
    assert body["platform"] == "onnxruntime_onnx"
    assert [tensor["name"] for tensor in body["inputs"]] == list(HEART_FEATURE_NAMES)
    assert all(tensor["shape"] == [-1, 1] for tensor in body["inputs"])
    assert {t["name"]: t["datatype"] for t in body["inputs"]}["thal"] == "BYTES"
    assert body["outputs"] == [
        {"name": "probability", "datatype": "FP32", "shape": [-1]},
        {"name": "prediction", "datatype": "INT64", "shape": [-1]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]


def test_digits_metadata_at_its_version(client: TestClient, digits_version: Path) -> None:
    version = version_of(digits_version)
    body = client.get(f"/v2/models/digits/versions/{version}").json()
    assert body["versions"] == [version]
    assert body["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert [(t["name"], t["datatype"], t["shape"]) for t in body["outputs"]] == [
        ("probabilities", "FP32", [-1, 10]),
        ("digit", "INT64", [-1]),
        ("probability", "FP32", [-1]),
    ]


def test_model_readiness_with_and_without_a_version(client: TestClient, heart_version: Path) -> None:
    assert client.get("/v2/models/heart/ready").status_code == 200
    assert client.get("/v2/models/digits/ready").content == b""
    assert client.get(f"/v2/models/heart/versions/{version_of(heart_version)}/ready").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v2/models/cats"),
        ("get", "/v2/models/cats/ready"),
        ("get", "/v2/models/cats/versions/1/ready"),
        ("post", "/v2/models/cats/infer"),
    ],
)
def test_an_unknown_model_is_404_naming_it(
    client: TestClient, expect_v2_error: V2Error, method: str, path: str
) -> None:
    response = client.request(method, path, json={"inputs": []})
    expect_v2_error(response, 404, "'cats'", "heart, digits")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v2/models/heart/versions/20990101T000000Z-00000000"),
        ("get", "/v2/models/heart/versions/20990101T000000Z-00000000/ready"),
        ("post", "/v2/models/digits/versions/20990101T000000Z-00000000/infer"),
    ],
)
def test_a_version_not_served_is_404_naming_it(
    client: TestClient, expect_v2_error: V2Error, method: str, path: str
) -> None:
    response = client.request(method, path, json={"inputs": []})
    expect_v2_error(response, 404, "'20990101T000000Z-00000000'", "serves")


def test_heart_infer_echoes_the_id_and_gives_every_output(
    client: TestClient, heart_reference: dict[str, Any], heart_version: Path
) -> None:
    patients = heart_reference["inputs"][:4]
    response = client.post("/v2/models/heart/infer", json={"id": "req-7", "inputs": heart_inputs(patients)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "heart"
    assert body["model_version"] == version_of(heart_version)
    assert body["id"] == "req-7"
    assert [tensor["name"] for tensor in body["outputs"]] == ["probability", "prediction", "label"]
    probability, prediction, label = body["outputs"]
    assert probability["datatype"] == "FP32" and probability["shape"] == [4]
    assert probability["data"] == pytest.approx(heart_reference["probabilities"][:4], abs=1e-5)
    assert prediction["datatype"] == "INT64" and prediction["shape"] == [4]
    assert label["datatype"] == "BYTES"
    assert label["data"] == [["no disease", "disease"][p] for p in prediction["data"]]


def test_outputs_in_the_request_select_and_order_the_outputs(client: TestClient) -> None:
    body = {"inputs": heart_inputs([HEART_EXAMPLE]), "outputs": [{"name": "label"}, {"name": "probability"}]}
    answer = client.post("/v2/models/heart/infer", json=body).json()
    assert [tensor["name"] for tensor in answer["outputs"]] == ["label", "probability"]
    assert "id" not in answer  # no id asked, none echoed


def test_flat_nested_and_every_numeric_datatype_give_the_same_numbers(client: TestClient) -> None:
    patients = [HEART_EXAMPLE, {**HEART_EXAMPLE, "age": 45, "oldpeak": 0, "thal": "normal"}]
    answers = []
    for nested in (True, False):
        for datatype in ("FP32", "FP64", "INT64"):
            rows = [{k: (round(v) if isinstance(v, float) else v) for k, v in p.items()} for p in patients]
            inputs = heart_inputs(rows if datatype == "INT64" else patients, nested=nested, datatype=datatype)
            response = client.post("/v2/models/heart/infer", json={"inputs": inputs})
            assert response.status_code == 200, response.text
            answers.append((datatype, output(response.json(), "probability")["data"]))
    by_type = {datatype: data for datatype, data in answers if datatype != "INT64"}
    assert all(data == by_type["FP32"] for datatype, data in answers if datatype != "INT64")
    assert by_type["FP64"] == by_type["FP32"]
    # [N] is a shape the heart inputs take as well as [N, 1]
    flat = [{**tensor, "shape": [2]} for tensor in heart_inputs(patients, nested=False)]
    assert (
        output(client.post("/v2/models/heart/infer", json={"inputs": flat}).json(), "probability")["data"]
        == (by_type["FP32"])
    )


def test_threshold_parameter_overrides_the_decision(client: TestClient) -> None:
    inputs = heart_inputs([HEART_EXAMPLE])
    probability = output(client.post("/v2/models/heart/infer", json={"inputs": inputs}).json(), "probability")
    p = probability["data"][0]
    below, above = p / 2, min((p + 1) / 2, 0.999)
    decided = []
    for threshold in (below, above):
        body = {"inputs": inputs, "parameters": {"threshold": threshold}}
        decided.append(output(client.post("/v2/models/heart/infer", json=body).json(), "prediction")["data"])
    assert decided == [[1], [0]]


def test_missing_values_as_null_or_as_an_absent_input_match_predict(client: TestClient) -> None:
    partial = {"age": 61, "sex": 1, "cp": 4, "chol": None, "thal": None}
    expected = client.post("/predict/heart", json=partial).json()
    as_nulls = heart_inputs([partial])
    left_out = [tensor for tensor in as_nulls if tensor["data"] != [[None]]]
    assert len(left_out) == 3
    for inputs in (as_nulls, left_out):
        answer = client.post("/v2/models/heart/infer", json={"inputs": inputs}).json()
        assert output(answer, "probability")["data"] == [expected["probability"]]
        assert output(answer, "label")["data"] == [expected["label"]]


def test_digits_flat_and_square_pixels_give_the_reference(client: TestClient, digits_reference: dict[str, Any]) -> None:
    items, expected = digits_reference["inputs"][:3], digits_reference["probabilities"][:3]
    answers = []
    for square in (False, True):
        response = client.post("/v2/models/digits/infer", json={"inputs": digits_inputs(items, square=square)})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert answers[0]["outputs"] == answers[1]["outputs"]
    probabilities = output(answers[0], "probabilities")
    assert probabilities["shape"] == [3, 10] and probabilities["datatype"] == "FP32"
    flat_expected = [value for row in expected for value in row]
    assert probabilities["data"] == pytest.approx(flat_expected, abs=1e-5)
    digits = [max(range(10), key=row.__getitem__) for row in expected]
    assert output(answers[0], "digit") == {"name": "digit", "shape": [3], "datatype": "INT64", "data": digits}
    best = output(answers[0], "probability")["data"]
    assert best == [probabilities["data"][i * 10 + d] for i, d in enumerate(digits)]


def test_before_the_models_are_loaded_readiness_is_false_everywhere(v2_settings: Settings) -> None:
    cold = TestClient(app=create_app(v2_settings))  # no `with`: the lifespan never runs
    assert cold.get("/health/ready").status_code == 503
    assert cold.get("/v2/health/ready").status_code == 400
    assert cold.get("/v2/health/live").status_code == 200
    assert cold.get("/v2/models/heart/ready").status_code == 400
    response = cold.post("/v2/models/heart/infer", json={"inputs": heart_inputs([HEART_EXAMPLE])})
    assert response.status_code == 503
    assert response.json() == {"error": "the models are not loaded yet"}
