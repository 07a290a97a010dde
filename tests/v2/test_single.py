"""V2 single rows: read without numpy (service.api.v2.single) exactly as the general path reads them, never
accepting what it refuses; and concurrent single rows share one onnxruntime call, as /predict singles do."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.api.v2.infer import _envelope, infer, input_arrays, predict
from service.api.v2.raw import RawInput, binary_inputs
from service.api.v2.single import plain_row, scalar_request
from service.contract import HEART_EXAMPLE, HEART_FEATURES
from service.dataplane import DataPlane
from service.errors import ServiceError
from service.settings import Settings
from tests.v2.tensors import heart_inputs

MAX_BATCH = 1000


@pytest.fixture(scope="module")
def plane(v2_settings: Settings) -> Iterator[tuple[DataPlane, asyncio.AbstractEventLoop]]:
    """The data plane with both models loaded, and the event loop its micro-batchers run in."""
    loop = asyncio.new_event_loop()
    data_plane = DataPlane(v2_settings)
    loop.run_until_complete(data_plane.load_all())
    yield data_plane, loop
    loop.close()


def _general(model: Any, body: bytes) -> np.ndarray | ServiceError:
    """The general path's matrix for a JSON body, or its refusal."""
    try:
        tensors = binary_inputs(_envelope(body), None)
        arrays, rows = input_arrays(model, tensors, MAX_BATCH)
        return model.tensor_matrix(arrays, rows)
    except ServiceError as error:
        return error


def _single(model: Any, body: bytes) -> list[Any] | None:
    request = scalar_request(body)
    return None if request is None else plain_row(model, request.inputs)


def _agree(model: Any, body: bytes) -> list[Any] | None:
    """The single path's row, after checking it against the general path's (None: it declined)."""
    row = _single(model, body)
    if row is not None:
        general = _general(model, body)
        assert not isinstance(general, ServiceError), f"the single path took what the general path refuses: {general}"
        assert general.shape == (1, len(HEART_FEATURES))
        np.testing.assert_array_equal(np.array([row], dtype=np.float32), general)  # NaN ⇔ None
    return row


def test_plain_single_rows_take_the_single_path_and_agree(plane: tuple[DataPlane, Any]) -> None:
    model = plane[0].get("heart").model
    partial = {key: value for key, value in HEART_EXAMPLE.items() if key not in ("ca", "chol")}
    bodies = [
        {"inputs": heart_inputs([HEART_EXAMPLE], nested=False)},  # flat data, as tritonclient sends it
        {"inputs": heart_inputs([HEART_EXAMPLE], nested=True)},  # [[v]] for shape [1, 1]
        {"inputs": heart_inputs([HEART_EXAMPLE], datatype="FP32"), "id": "a", "parameters": {"threshold": 0.3}},
        {"inputs": heart_inputs([HEART_EXAMPLE], datatype="INT64")[:9]},  # integers; oldpeak etc. left out
        {"inputs": heart_inputs([{**HEART_EXAMPLE, "ca": None, "thal": None}])},  # explicit nulls
        {"inputs": [tensor for tensor in heart_inputs([partial]) if tensor["name"] in partial]},  # absent ones
        {"inputs": [{**tensor, "shape": [1]} for tensor in heart_inputs([HEART_EXAMPLE], nested=False)]},
    ]
    for body in bodies:
        assert _agree(model, json.dumps(body).encode()) is not None, body


# Values near and past every bound, of every JSON kind, so that both paths' checks meet.
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 800),
    st.floats(-10, 800, allow_nan=False),
    st.sampled_from([0.5, 2.0, 3.0, 1e300, -0.0, 120.5, 2**63]),
    st.sampled_from(["normal", "fixed", "reversible", "Normal", "", "3", "é"]),
)


@st.composite
def valid_tensor(draw: st.DrawFn, spec: Any) -> dict[str, Any]:
    """One feature as a one-row input that both paths take: any accepted datatype, shape and nesting."""
    if spec.categories:
        value = draw(st.sampled_from(spec.categories))
    elif spec.integer:
        value = draw(st.integers(int(spec.minimum), int(spec.maximum)))
    else:
        value = draw(st.integers(int(spec.minimum), int(spec.maximum)) | st.floats(spec.minimum, spec.maximum))
    if spec.nullable and draw(st.integers(0, 5)) == 0:
        value = None
    if isinstance(value, str):
        datatype = "BYTES"
    else:
        datatype = draw(
            st.sampled_from(["FP64", "FP32", "INT64"] if not isinstance(value, float) else ["FP64", "FP32"])
        )
        if isinstance(value, int) and datatype != "INT64" and draw(st.booleans()):
            value = float(value)  # 3.0 for a whole number: fine as FP32/FP64
    shape = draw(st.sampled_from([[1, 1], [1]]))
    data = [[value]] if shape == [1, 1] and draw(st.booleans()) else [value]
    return {"name": spec.name, "shape": shape, "datatype": datatype, "data": data}


def edges(spec: Any) -> list[Any]:
    """Values at and just past the feature's bounds, halves where whole numbers belong, other kinds."""
    if spec.categories and isinstance(spec.categories[0], str):
        return [*spec.categories, spec.categories[0].upper(), "", 3, None]
    low, high = (min(spec.codes), max(spec.codes)) if spec.categories else (spec.minimum, spec.maximum)
    middle = (low + high) / 2
    return [
        low,
        high,
        low - 1,
        high + 1,
        low - 0.001,
        high + 0.001,
        low + 0.5,
        middle + 0.25,
        float(low),
        True,
        None,
        "1",
    ]


SPECS = {spec.name: spec for spec in HEART_FEATURES}
# What a fault may do to one input (or to the request).
FAULTS = ["drop", "twice", *["value"] * 6, "datatype", "shape", "data", "unknown"]


@st.composite
def single_rows(draw: st.DrawFn) -> bytes:
    """A heart row both paths take, with 0 to 3 faults that make it one neither, one, or both may take:
    an input left out or given twice, a value of any JSON kind, a wrong datatype, shape or nesting."""
    inputs = [draw(valid_tensor(spec)) for spec in HEART_FEATURES]
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        fault, index = draw(st.sampled_from(FAULTS)), draw(st.integers(0, len(inputs) - 1))
        tensor = inputs[index]
        if fault == "drop":
            inputs.pop(index)
        elif fault == "twice":  # the unknown input ("weight", a fault before) given twice too
            spec = SPECS.get(tensor["name"])
            inputs.append(dict(tensor) if spec is None else draw(valid_tensor(spec)))
        elif fault == "value":
            spec = SPECS.get(tensor["name"])
            tensor["data"] = [draw(VALUES if spec is None else st.sampled_from(edges(spec)) | VALUES)]
        elif fault == "datatype":
            tensor["datatype"] = draw(st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "fp64"]))
        elif fault == "shape":
            tensor["shape"] = draw(st.sampled_from([[2, 1], [1, 2], [], [0, 1], [1, 1, 1], [-1, 1]]))
        elif fault == "data":
            value = tensor["data"][0]
            tensor["data"] = draw(st.sampled_from([[value, value], [], [[value, value]], [[[value]]], [[]], value]))
        else:
            inputs.append({"name": "weight", "shape": [1, 1], "datatype": "FP64", "data": [70]})
    return json.dumps({"inputs": draw(st.permutations(inputs))}).encode()


def test_every_edge_value_of_every_input_is_read_alike(plane: tuple[DataPlane, Any]) -> None:
    """Each feature's edge values (edges), as every datatype and nesting, in an otherwise plain row."""
    model = plane[0].get("heart").model
    plain = heart_inputs([HEART_EXAMPLE], nested=False)
    taken = 0
    for index, spec in enumerate(HEART_FEATURES):
        for value in [*edges(spec), "1", 2**63]:
            for datatype in ("FP64", "FP32", "INT64", "BYTES"):
                for data in ([value], [[value]]):
                    inputs = [*plain[:index], {**plain[index], "datatype": datatype, "data": data}, *plain[index + 1 :]]
                    taken += _agree(model, json.dumps({"inputs": inputs}).encode()) is not None
    assert taken > 100  # the single path did take the plain ones


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=single_rows())
def test_the_single_path_never_takes_what_the_general_path_refuses_and_reads_the_same(
    plane: tuple[DataPlane, Any], body: bytes
) -> None:
    row = _agree(plane[0].get("heart").model, body)
    event("taken by the single path" if row is not None else "declined")


def _raw_single(patient: dict[str, Any]) -> list[RawInput]:
    inputs = []
    for spec in HEART_FEATURES:
        value = patient[spec.name]
        if spec.name == "thal":
            inputs.append(RawInput(spec.name, [1, 1], "BYTES", struct.pack("<I", len(value)) + value.encode()))
        else:
            inputs.append(
                RawInput(spec.name, [1, 1], "FP32", struct.pack("<f", float("nan") if value is None else value))
            )
    return inputs


def test_raw_single_rows_take_the_single_path_and_agree(plane: tuple[DataPlane, Any]) -> None:
    model = plane[0].get("heart").model
    for patient in (HEART_EXAMPLE, {**HEART_EXAMPLE, "ca": None}, {**HEART_EXAMPLE, "age": 400}):
        tensors = _raw_single(patient)
        row = plain_row(model, tensors)
        try:
            general = model.tensor_matrix(*input_arrays(model, tensors, MAX_BATCH))
        except ServiceError:
            assert row is None  # age 400: left to the general path, which refuses it
            continue
        assert row is not None
        np.testing.assert_array_equal(np.array([row], dtype=np.float32), general)


def test_concurrent_v2_single_rows_share_one_model_call(plane: tuple[DataPlane, asyncio.AbstractEventLoop]) -> None:
    data_plane, loop = plane
    heart = data_plane.get("heart")
    json_body = json.dumps({"inputs": heart_inputs([HEART_EXAMPLE], nested=False)}).encode()

    async def together() -> tuple[list[Any], int]:
        calls = heart.batcher.calls
        answers = await asyncio.gather(
            *(infer("heart", heart, json_body, MAX_BATCH) for _ in range(8)),
            *(predict(heart, _raw_single(HEART_EXAMPLE), None, ["probability"], MAX_BATCH) for _ in range(8)),
        )
        return answers, heart.batcher.calls - calls

    answers, calls = loop.run_until_complete(together())
    assert calls == 1  # 16 single rows (JSON and raw) in one event-loop turn: one onnxruntime call
    alone, _ = loop.run_until_complete(infer("heart", heart, json_body, MAX_BATCH))
    expected = json.loads(alone)
    probability = expected["outputs"][0]["data"][0]  # onnxruntime may differ in the last bits by batch size
    for answer, binary in answers[:8]:
        got = json.loads(answer)
        assert binary is None and got["outputs"][1:] == expected["outputs"][1:]  # prediction, label
        assert got["outputs"][0]["data"] == [pytest.approx(probability, abs=1e-6)]
    assert all(answer["probability"][2] == [pytest.approx(probability, abs=1e-6)] for answer in answers[8:])


def test_a_rows_output_tensors_are_those_of_the_batch_path(plane: tuple[DataPlane, Any]) -> None:
    """row_output_tensors (one row, without numpy) gives the values, and the JSON text, that output_tensors gives."""
    model = plane[0].get("heart").model
    outputs = np.array([0.0, 1.0, 0.36, 0.7344, 1e-8, 0.1, 0.99999994], dtype=np.float32)
    for output in outputs:
        for decision in (0, 1):
            built = model.output_tensors(np.asarray(output)[None], np.array([decision]))
            expected = {}
            for tensor in model.tensor_outputs:
                shape, values = built[tensor.name]()  # a list or a numpy array: compared as the list it sends
                expected[tensor.name] = (tensor.datatype, shape, np.asarray(values).tolist())
            got = model.row_output_tensors(output, decision)
            assert got == expected
            assert json.dumps(got) == json.dumps(expected)  # the same float text
            assert list(got) == [tensor.name for tensor in model.tensor_outputs]
