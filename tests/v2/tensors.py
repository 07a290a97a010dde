"""Reference rows (request bodies of /predict) as Open Inference Protocol input tensors."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from service.contract import HEART_FEATURE_NAMES

# A heart number as a learned single row's value may be replaced with (hypothesis): any float32, NaN and
# infinities included, whole numbers in and around the features' ranges, and codes.
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-5, 700).map(float),
    st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0, 0.5, -1.0]),
)


def heart_inputs(
    patients: list[dict[str, Any]], *, nested: bool = True, datatype: str = "FP64"
) -> list[dict[str, Any]]:
    """One input per feature, [N, 1]; a field absent from a patient is `null` (missing)."""
    inputs = []
    for name in HEART_FEATURE_NAMES:
        values = [patient.get(name) for patient in patients]
        data: list[Any] = [[value] for value in values] if nested else values
        kind = "BYTES" if name == "thal" else datatype
        inputs.append({"name": name, "shape": [len(patients), 1], "datatype": kind, "data": data})
    return inputs


def digits_inputs(items: list[dict[str, Any]], *, square: bool = False) -> list[dict[str, Any]]:
    """`pixels` [N, 64] flat, or [N, 8, 8] nested."""
    rows = [item["pixels"] for item in items]
    if square:
        data: list[Any] = [[row[r * 8 : r * 8 + 8] for r in range(8)] for row in rows]
        return [{"name": "pixels", "shape": [len(rows), 8, 8], "datatype": "FP32", "data": data}]
    return [{"name": "pixels", "shape": [len(rows), 64], "datatype": "FP32", "data": [v for row in rows for v in row]}]


def output(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [tensor for tensor in body["outputs"] if tensor["name"] == name]
    return found
