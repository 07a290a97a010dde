"""The heart model over the protocol: one input tensor per feature → the (N, 13) matrix; three outputs.

Each feature is its own input, named and ordered as in contract.HEART_FEATURES, of shape [N, 1] or [N].
Numbers and numeric categories come as FP32, FP64 or INT64 (whole numbers where the feature is
integer or a category), `thal` as BYTES. A missing value: `null` in `data`, or the whole input left out
(every row missing); only the features /predict/heart lets be missing may be (not `age`, not `sex`).
The ranges and categories are the contract's, the same the /predict request schema is built from.

The columns are decoded one by one into a float64 matrix, then checked all at once: a handful of numpy
operations over the whole matrix, whatever the number of inputs, because per-column checks cost more
than the model call for a small request. Only on failure is the first offending value looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any

import numpy as np

from service.contract import HEART_FEATURES, HEART_LABELS, FeatureSpec
from service.v2.errors import V2Error, bad_request
from service.v2.schemas import ResponseOutput, TensorMetadata, WireInput
from service.v2.tensors import NUMERIC, batch_size, by_name, check_shape, decode, first, show

NAMES = tuple(spec.name for spec in HEART_FEATURES)
REQUIRED = tuple(spec.name for spec in HEART_FEATURES if not spec.nullable)
NULLABLE = ", ".join(spec.name for spec in HEART_FEATURES if spec.nullable)
_SHAPES = ((1,), ())  # [N, 1] or [N]
_BAD = float("inf")  # a text category's "not a category": outside every range below


def _is_text(spec: FeatureSpec) -> bool:
    return spec.kind == "category" and any(isinstance(value, str) for value in spec.categories)


def _bounds(spec: FeatureSpec) -> tuple[float, float]:
    if spec.kind == "number":
        return float(spec.minimum), float(spec.maximum)  # type: ignore[arg-type]
    return min(spec.codes), max(spec.codes)


def _contiguous(spec: FeatureSpec) -> bool:
    """Codes that are every whole number from the lowest to the highest: a range check is the category check."""
    low, high = _bounds(spec)
    return set(spec.codes) == set(range(int(low), int(high) + 1))


# Per column, in the ONNX order: the datatypes taken, the text → code table (thal), the bounds, whether
# values must be whole (integer numbers and numeric categories), whether null is allowed.
_DATATYPES = [("BYTES",) if _is_text(spec) else NUMERIC for spec in HEART_FEATURES]
_TABLES = {
    index: {**dict(zip(spec.categories, spec.codes, strict=True)), None: np.nan}
    for index, spec in enumerate(HEART_FEATURES)
    if _is_text(spec)
}
_LOW = np.array([_bounds(spec)[0] for spec in HEART_FEATURES])
_HIGH = np.array([_bounds(spec)[1] for spec in HEART_FEATURES])
_WHOLE = np.array([spec.integer or (spec.kind == "category" and not _is_text(spec)) for spec in HEART_FEATURES])
_NOT_NULLABLE = np.array([not spec.nullable for spec in HEART_FEATURES])
# Numeric categories whose codes have gaps need a membership check besides the range (none today).
_SPARSE = [
    index
    for index, spec in enumerate(HEART_FEATURES)
    if spec.kind == "category" and not _is_text(spec) and not _contiguous(spec)
]
_INDEX = {name: index for index, name in enumerate(NAMES)}

INPUTS = [
    TensorMetadata(name=spec.name, datatype=types[0], shape=[-1, 1])
    for spec, types in zip(HEART_FEATURES, _DATATYPES, strict=True)
]
OUTPUTS = [
    TensorMetadata(name="probability", datatype="FP32", shape=[-1]),
    TensorMetadata(name="prediction", datatype="INT64", shape=[-1]),
    TensorMetadata(name="label", datatype="BYTES", shape=[-1]),
]
ACCEPTS_THRESHOLD = True


def _refusal(matrix: np.ndarray, bad: np.ndarray, texts: dict[int, np.ndarray]) -> V2Error:
    """The error for the first offending value, in feature order (the caller found that there is one)."""
    column = first(bad.any(axis=0))
    row = first(bad[:, column])
    spec, value = HEART_FEATURES[column], float(matrix[row, column])
    name = spec.name
    if np.isnan(value):
        return bad_request(
            f"input {name!r}: null at row {row}, but {name} cannot be missing (only {NULLABLE} may)", "missing_required"
        )
    if column in texts:
        allowed = ", ".join(map(repr, spec.categories))
        given = repr(texts[column][row])[:64]
        return bad_request(f"input {name!r}: {given} at row {row} is not one of {allowed}", "category")
    if spec.kind == "category":
        allowed = ", ".join(map(show, spec.categories))
        return bad_request(f"input {name!r}: {show(value)} at row {row} is not one of {allowed}", "category")
    whole = "a whole number " if spec.integer else ""
    low, high = _bounds(spec)
    return bad_request(
        f"input {name!r}: {show(value)} at row {row} is not {whole}within {show(low)}..{show(high)}", "range"
    )


def to_matrix(inputs: list[WireInput], max_batch: int) -> np.ndarray:
    """The input tensors → the (N, 13) float32 matrix in the ONNX column order, NaN where missing."""
    tensors = by_name(inputs, NAMES, REQUIRED)
    rows = {name: check_shape(tensor, _SHAPES) for name, tensor in tensors.items()}
    size = batch_size(tensors, rows, max_batch)
    matrix = np.full((size, len(NAMES)), np.nan)
    texts: dict[int, np.ndarray] = {}
    for name, tensor in tensors.items():
        index = _INDEX[name]
        values = decode(tensor, _DATATYPES[index]).reshape(-1)
        if index in _TABLES:
            texts[index] = values
            values = np.array(list(map(_TABLES[index].get, values.tolist(), repeat(_BAD))))
        matrix[:, index] = values
    missing = np.isnan(matrix)
    # NaN compares False everywhere, so a missing value is never outside; it is bad only where not nullable.
    bad = (matrix < _LOW) | (matrix > _HIGH) | (_WHOLE & (matrix != np.floor(matrix)) & ~missing)
    bad |= missing & _NOT_NULLABLE
    for index in _SPARSE:
        bad[:, index] |= ~np.isin(matrix[:, index], HEART_FEATURES[index].codes) & ~missing[:, index]
    if bad.any():
        raise _refusal(matrix, bad, texts)
    return matrix.astype(np.float32)  # float64 → float32, as /predict's Python floats are


def outputs(predictor: Any, matrix: np.ndarray, threshold: float | None) -> dict[str, Callable[[], ResponseOutput]]:
    """Predict, and return each output as a builder: only the outputs asked for are encoded."""
    probabilities, decided = predictor.predict_matrix(matrix, threshold)
    shape = [len(decided)]
    return {
        "probability": lambda: ResponseOutput("probability", shape, "FP32", probabilities.tolist()),
        "prediction": lambda: ResponseOutput("prediction", shape, "INT64", decided.tolist()),
        "label": lambda: ResponseOutput("label", shape, "BYTES", [HEART_LABELS[d] for d in decided.tolist()]),
    }
