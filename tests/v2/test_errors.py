"""Every class of bad request is a 4xx in the protocol's shape, `{"error": "..."}`, naming the input and
the problem; no input gives a 5xx. Value checks are the /predict checks (the contract's ranges)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from litestar.testing import TestClient

from service.contract import HEART_EXAMPLE
from tests.v2.conftest import V2Error
from tests.v2.tensors import digits_inputs, heart_inputs

HEART = "/v2/models/heart/infer"
DIGITS = "/v2/models/digits/infer"


def heart_body(**changes: dict[str, Any]) -> dict[str, Any]:
    """Two good patients as V2 inputs, with the named inputs' fields replaced (None: input removed)."""
    inputs = heart_inputs([HEART_EXAMPLE, {**HEART_EXAMPLE, "age": 45}])
    kept = [tensor for tensor in inputs if changes.get(tensor["name"], {}) is not None]
    return {"inputs": [{**tensor, **changes.get(tensor["name"], {})} for tensor in kept]}


PIXELS = [0.0] * 20 + [8.0] * 24 + [0.0] * 20

HEART_CASES = {
    "wrong datatype for a number": (
        heart_body(age={"datatype": "BYTES", "data": [["80"], ["45"]]}),
        ["'age'", "BYTES"],
    ),
    "a string among numbers": (heart_body(chol={"data": [[300], ["300"]]}), ["'chol'", "FP64", "str"]),
    "a bool among numbers": (heart_body(fbs={"data": [[True], [0]]}), ["'fbs'", "bool"]),
    "a fraction in INT64": (heart_body(age={"datatype": "INT64", "data": [[80.5], [45]]}), ["'age'", "INT64", "float"]),
    "numbers for thal": (heart_body(thal={"data": [[6], [7]]}), ["'thal'", "BYTES"]),
    "an unsupported datatype": (heart_body(age={"datatype": "INT32"}), ["'age'", "INT32", "FP32, FP64, INT64"]),
    "data shorter than the shape": (heart_body(age={"data": [[80]]}), ["'age'", "1 values", "[2, 1]"]),
    "nested data of another shape": (heart_body(age={"shape": [1, 2], "data": [[80, 45]]}), ["'age'", "[N, 1]"]),
    "ragged nested data": (heart_body(chol={"data": [[300], [1, 2]]}), ["'chol'", "ragged"]),
    "a negative dimension": (heart_body(age={"shape": [-2, 1]}), ["'age'", "negative"]),
    "inputs disagree on rows": (heart_body(age={"shape": [1, 1], "data": [80]}), ["rows", "age 1", "sex 2"]),
    "an empty batch": (heart_body(**{n: {"shape": [0, 1], "data": []} for n in HEART_EXAMPLE}), ["0 rows"]),
    "an unknown input": (
        {"inputs": [*heart_body()["inputs"], {**heart_body()["inputs"][0], "name": "bmi"}]},
        ["'bmi'"],
    ),
    "an input twice": ({"inputs": [*heart_body()["inputs"], heart_body()["inputs"][0]]}, ["'age'", "twice"]),
    "a required input left out": (heart_body(sex=None), ["missing input", "'sex'"]),
    "null where it cannot be missing": (heart_body(age={"data": [[80], [None]]}), ["'age'", "null at row 1"]),
    "a value out of range": (heart_body(trestbps={"data": [[124], [300]]}), ["'trestbps'", "300 at row 1", "50..250"]),
    "a fraction where whole numbers belong": (heart_body(ca={"data": [[1.5], [0]]}), ["'ca'", "1.5", "whole"]),
    "a number outside the categories": (heart_body(cp={"data": [[1], [5]]}), ["'cp'", "5 at row 1", "1, 2, 3, 4"]),
    "a name outside the categories": (heart_body(thal={"data": [["fixed"], ["bogus"]]}), ["'thal'", "'bogus'"]),
    "an unknown output": ({**heart_body(), "outputs": [{"name": "risk"}]}, ["'risk'", "probability"]),
    "a threshold out of range": ({**heart_body(), "parameters": {"threshold": 1.5}}, ["'threshold'", "1.5"]),
    "a threshold that is not a number": ({**heart_body(), "parameters": {"threshold": "0.3"}}, ["'threshold'"]),
    "an unknown request parameter": ({**heart_body(), "parameters": {"treshold": 0.3}}, ["'treshold'"]),
    "binary input data without the header": (
        heart_body(age={"parameters": {"binary_data_size": 8}}),
        ["'age'", "Inference-Header-Content-Length"],
    ),
    "an unknown input parameter": (heart_body(age={"parameters": {"unit": "years"}}), ["'age'", "'unit'"]),
    "no inputs field": ({"id": "x"}, ["inputs"]),
    "an unknown request field": ({**heart_body(), "input": []}, ["input"]),
    "an id that is not a string": ({**heart_body(), "id": 7}, ["id"]),
}


@pytest.mark.parametrize("case", list(HEART_CASES))
def test_heart_bad_request_is_a_400_naming_the_problem(client: TestClient, expect_v2_error: V2Error, case: str) -> None:
    body, mentions = HEART_CASES[case]
    before = copy.deepcopy(body)
    expect_v2_error(client.post(HEART, json=body), 400, *mentions)
    assert body == before


DIGIT_CASES = {
    "a pixel out of range": (
        [{**digits_inputs([{"pixels": PIXELS}])[0], "data": [*PIXELS[:63], 17]}],
        ["17", "pixel 63"],
    ),
    "a null pixel": ([{**digits_inputs([{"pixels": PIXELS}])[0], "data": [None, *PIXELS[1:]]}], ["null", "pixel 0"]),
    "FP64 instead of FP32": ([{**digits_inputs([{"pixels": PIXELS}])[0], "datatype": "FP64"}], ["FP64", "FP32"]),
    "63 pixels": ([{"name": "pixels", "shape": [1, 63], "datatype": "FP32", "data": PIXELS[:63]}], ["[N, 64]"]),
    "data longer than the shape": ([{**digits_inputs([{"pixels": PIXELS}])[0], "data": PIXELS * 2}], ["128 values"]),
    "no pixels": ([], ["missing input", "'pixels'"]),
    "another name": ([{**digits_inputs([{"pixels": PIXELS}])[0], "name": "image"}], ["'image'", "pixels"]),
}


@pytest.mark.parametrize("case", list(DIGIT_CASES))
def test_digits_bad_request_is_a_400_naming_the_problem(
    client: TestClient, expect_v2_error: V2Error, case: str
) -> None:
    inputs, mentions = DIGIT_CASES[case]
    expect_v2_error(client.post(DIGITS, json={"inputs": inputs}), 400, "pixels", *mentions)


def test_a_number_beyond_a_double_is_refused(client: TestClient, expect_v2_error: V2Error) -> None:
    # JSON has no infinity, but 1e999 is valid JSON; msgspec refuses it rather than make it inf.
    body = json.dumps(heart_body(oldpeak={"data": [[12345.5], [0]]})).replace("12345.5", "1e999")
    response = client.post(HEART, content=body, headers={"content-type": "application/json"})
    expect_v2_error(response, 400, "'oldpeak'", "out of range", "data[0][0]")


def test_digits_have_no_threshold(client: TestClient, expect_v2_error: V2Error) -> None:
    body = {"inputs": digits_inputs([{"pixels": PIXELS}]), "parameters": {"threshold": 0.5}}
    expect_v2_error(client.post(DIGITS, json=body), 400, "threshold", "digits")


def test_a_batch_over_the_limit_is_refused(client: TestClient, expect_v2_error: V2Error) -> None:
    rows = client.app.state.plane.settings.max_batch + 1
    inputs = [{"name": "pixels", "shape": [rows, 64], "datatype": "FP32", "data": [0] * (rows * 64)}]
    expect_v2_error(client.post(DIGITS, json={"inputs": inputs}), 400, f"{rows} rows", "SERVICE_MAX_BATCH")


@pytest.mark.parametrize(
    ("content", "mention"),
    [
        (b'{"inputs": [', "not valid JSON"),
        (b'{"inputs": [{"name": "\xff"}]}', "UTF-8"),
        (b"[]", "protocol"),
        (b'{"inputs": [], "parameters": {"a": ' + b"[" * 1500 + b"]" * 1500 + b"}}", "nested too deeply"),  # small
        (b'{"parameters": {"a": ' + b"[" * 50000 + b"]" * 50000 + b'}, "inputs": []}', "nested too deeply"),
    ],
)
def test_bodies_that_are_not_a_request_are_400(
    client: TestClient, expect_v2_error: V2Error, content: bytes, mention: str
) -> None:
    response = client.post(HEART, content=content, headers={"content-type": "application/json"})
    expect_v2_error(response, 400, mention)


def test_no_content_type_is_json_but_another_one_is_415(client: TestClient, expect_v2_error: V2Error) -> None:
    body = b'{"inputs": []}'
    expect_v2_error(client.post(HEART, content=body), 400, "missing input")  # read as JSON
    expect_v2_error(client.post(HEART, content=body, headers={"content-type": "text/plain"}), 415, "JSON")


def test_a_body_over_the_limit_is_413(client: TestClient, expect_v2_error: V2Error) -> None:
    limit = client.app.state.plane.settings.max_body_bytes
    response = client.post(HEART, content=b" " * (limit + 1), headers={"content-type": "application/json"})
    expect_v2_error(response, 413, "limit")


def test_predict_routes_keep_their_own_error_shape(client: TestClient) -> None:
    body = client.post("/predict/heart", json={"age": 300, "sex": 1}).json()
    assert set(body["error"]) == {"code", "message", "fields"}
