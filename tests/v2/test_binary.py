"""Triton's binary tensor extension: raw inputs (alone or mixed with JSON ones), binary outputs when asked,
and every framing that does not add up refused with a 400 naming the input, never read as a tensor."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.contract import HEART_FEATURE_NAMES
from tests.v2.binary import frame, raw, unframe
from tests.v2.conftest import V2Error
from tests.v2.tensors import digits_inputs, heart_inputs, output

HEART = "/v2/models/heart/infer"
DIGITS = "/v2/models/digits/infer"
NUMERIC = [name for name in HEART_FEATURE_NAMES if name != "thal"]


def complete_rows(reference: dict[str, Any]) -> tuple[list[dict[str, Any]], list[float]]:
    rows = [
        (row, p)
        for row, p in zip(reference["inputs"], reference["probabilities"], strict=True)
        if len(row) == 13 and None not in row.values()
    ]
    return [row for row, _ in rows], [p for _, p in rows]


def json_answer(client: TestClient, path: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(path, json={"inputs": inputs})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("binary", [set(HEART_FEATURE_NAMES), {"age", "thal", "chol"}], ids=["all", "mixed"])
def test_binary_heart_inputs_give_the_json_answer(
    client: TestClient, heart_reference: dict[str, Any], binary: set[str]
) -> None:
    rows, expected = complete_rows(heart_reference)
    inputs = heart_inputs(rows, datatype="FP32")
    body, headers = frame(inputs, binary, id="b-1")
    response = client.post(HEART, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert "inference-header-content-length" not in response.headers  # outputs as JSON unless asked
    answer = response.json()
    assert answer["id"] == "b-1"
    assert output(answer, "probability")["data"] == pytest.approx(expected, abs=1e-5)
    same = json_answer(client, HEART, inputs)  # the same rows as JSON (float32 values: the same rounding)
    assert output(answer, "probability")["data"] == pytest.approx(output(same, "probability")["data"], abs=1e-6)
    assert output(answer, "label") == output(same, "label")


def test_binary_outputs_when_asked_on_the_request(client: TestClient, digits_reference: dict[str, Any]) -> None:
    items = digits_reference["inputs"][:30]
    body, headers = frame(digits_inputs(items), {"pixels"}, parameters={"binary_data_output": True})
    response = client.post(DIGITS, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    answer = unframe(response.content, int(response.headers["inference-header-content-length"]))
    assert all("binary_data_size" in tensor["parameters"] for tensor in answer["outputs"])
    got = np.array(output(answer, "probabilities")["data"]).reshape(30, 10)
    for row, want in zip(got.tolist(), digits_reference["probabilities"][:30], strict=True):
        assert row == pytest.approx(want, abs=1e-5)
    assert output(answer, "digit")["data"] == got.argmax(axis=1).tolist()


def test_binary_output_per_requested_output(client: TestClient, heart_reference: dict[str, Any]) -> None:
    rows, expected = complete_rows(heart_reference)
    outputs = [{"name": "label", "parameters": {"binary_data": True}}, {"name": "probability"}]
    response = client.post(HEART, json={"inputs": heart_inputs(rows), "outputs": outputs})
    assert response.status_code == 200, response.text
    answer = unframe(response.content, int(response.headers["inference-header-content-length"]))
    assert [tensor["name"] for tensor in answer["outputs"]] == ["label", "probability"]
    assert "parameters" not in output(answer, "probability")  # JSON, in `data`
    assert output(answer, "probability")["data"] == pytest.approx(expected, abs=1e-5)
    assert set(output(answer, "label")["data"]) == {"disease", "no disease"}


def test_binary_outputs_flag_must_be_a_bool(client: TestClient, expect_v2_error: V2Error) -> None:
    body = {"inputs": heart_inputs([{"age": 60, "sex": 1}]), "parameters": {"binary_data_output": "yes"}}
    expect_v2_error(client.post(HEART, json=body), 400, "'binary_data_output'", "'yes'")


def framed(age: bytes, size: int | None = None, extra: bytes = b"", length: int | None = None) -> tuple[bytes, dict]:
    """A one-row heart request whose `age` is binary: its bytes, its declared size, bytes after, header length."""
    inputs = heart_inputs([{"age": 60, "sex": 1}])
    inputs[0] = {"name": "age", "shape": [1, 1], "datatype": "FP32", "parameters": {"binary_data_size": len(age)}}
    if size is not None:
        inputs[0]["parameters"]["binary_data_size"] = size
    header = json.dumps({"inputs": inputs}).encode()
    length = len(header) if length is None else length
    return header + age + extra, {"Inference-Header-Content-Length": str(length)}


FRAMING_CASES = {
    "short data": (framed(b"\x00\x00"), ["'age'", "2 bytes", "needs 4"]),
    "long data": (framed(raw("FP32", [60, 61])), ["'age'", "8 bytes", "needs 4"]),
    "a size past the end": (framed(raw("FP32", [60]), size=400), ["'age'", "400"]),
    "bytes after the last input": (framed(raw("FP32", [60]), extra=b"\x00"), ["1 bytes after"]),
    "a header longer than the body": (framed(raw("FP32", [60]), length=10_000), ["Inference-Header-Content-Length"]),
    "a header that is not JSON": (framed(raw("FP32", [60]), length=3), ["JSON"]),
    "a negative size": (framed(raw("FP32", [60]), size=-4), ["'age'", "binary_data_size"]),
}


@pytest.mark.parametrize("case", list(FRAMING_CASES))
def test_framing_that_does_not_add_up_is_a_400(client: TestClient, expect_v2_error: V2Error, case: str) -> None:
    (body, headers), mentions = FRAMING_CASES[case]
    expect_v2_error(client.post(HEART, content=body, headers=headers), 400, *mentions)


@pytest.mark.parametrize(
    ("thal", "mention"),
    [
        (struct.pack("<I", 50) + b"normal", "claims 50 bytes"),
        (struct.pack("<I", 6) + b"normal" + b"\x00", "1 bytes left over"),
        (b"\x01\x00", "end before element 0"),
        (struct.pack("<I", 2) + b"\xff\xfe", "not UTF-8"),
    ],
)
def test_lying_bytes_elements_are_a_400_naming_the_input(
    client: TestClient, expect_v2_error: V2Error, thal: bytes, mention: str
) -> None:
    inputs = [*heart_inputs([{"age": 60, "sex": 1}])]
    inputs = [t for t in inputs if t["name"] != "thal"]
    header = json.dumps(
        {
            "inputs": [
                *inputs,
                {"name": "thal", "shape": [1, 1], "datatype": "BYTES", "parameters": {"binary_data_size": len(thal)}},
            ]
        }
    ).encode()
    headers = {"Inference-Header-Content-Length": str(len(header))}
    expect_v2_error(client.post(HEART, content=header + thal, headers=headers), 400, "'thal'", mention)


def test_a_bad_header_value_is_a_400(client: TestClient, expect_v2_error: V2Error) -> None:
    body, _ = framed(raw("FP32", [60]))
    headers = {"Inference-Header-Content-Length": "-3"}
    expect_v2_error(client.post(HEART, content=body, headers=headers), 400, "Inference-Header-Content-Length")


def test_octet_stream_without_the_header_is_415(client: TestClient, expect_v2_error: V2Error) -> None:
    response = client.post(HEART, content=b"{}", headers={"content-type": "application/octet-stream"})
    expect_v2_error(response, 415, "JSON")


def test_the_body_limit_holds_for_binary_bodies(client: TestClient, expect_v2_error: V2Error) -> None:
    limit = client.app.state.plane.settings.max_body_bytes
    body, headers = framed(b"\x00" * (limit + 1))
    expect_v2_error(client.post(HEART, content=body, headers=headers), 413, "limit")


@st.composite
def framings(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """Heart requests whose binary framing is right or wrong in every way: sizes, shapes, datatypes,
    header length, bytes appended or cut, BYTES lengths that lie."""
    rows = draw(st.integers(0, 3))
    inputs: list[dict[str, Any]] = []
    parts: list[bytes] = []
    for name in draw(st.lists(st.sampled_from([*HEART_FEATURE_NAMES, "bogus"]), max_size=6, unique=True)):
        datatype = draw(st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "INT8", "WEIRD"]))
        shape = draw(st.sampled_from([[rows, 1], [rows], [rows, 2], [-1, 1], []]))
        if datatype == "BYTES":
            values = draw(st.lists(st.sampled_from(["normal", "fixed", "", "é"]), min_size=rows, max_size=rows))
            data = raw("BYTES", values)
            if draw(st.booleans()):
                data = draw(st.binary(max_size=24))
        else:
            count = max(0, draw(st.integers(rows - 1, rows + 1)))
            data = np.asarray(draw(st.lists(st.floats(0, 300), min_size=count, max_size=count)), dtype="<f4").tobytes()
        size = len(data) + draw(st.sampled_from([0, 0, 0, -1, 1, 1000]))
        inputs.append({"name": name, "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": size}})
        parts.append(data)
    header = json.dumps({"inputs": inputs}).encode()
    body = header + b"".join(parts) + draw(st.binary(max_size=4))
    length = len(header) + draw(st.sampled_from([0, 0, -1, 1, -len(header)]))
    return body, {"Inference-Header-Content-Length": str(length)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(framings())
def test_fuzzed_framing_is_answered_200_or_a_400(client: TestClient, case: tuple[bytes, dict[str, str]]) -> None:
    body, headers = case
    response = client.post(HEART, content=body, headers=headers)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]
