"""The digits model over the protocol: `pixels` FP32 [N, 64] or [N, 8, 8], ink counts 0..16; three outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service.contract import DIGIT_LABELS, DIGIT_MAX_VALUE, DIGIT_PIXELS, DIGIT_SIDE
from service.v2.errors import bad_request
from service.v2.schemas import ResponseOutput, TensorMetadata, WireInput
from service.v2.tensors import batch_size, by_name, check_shape, decode, first, show

INPUT = "pixels"
_SHAPES = ((DIGIT_PIXELS,), (DIGIT_SIDE, DIGIT_SIDE))  # [N, 64] or [N, 8, 8]
CLASSES = len(DIGIT_LABELS)
INPUTS = [TensorMetadata(name=INPUT, datatype="FP32", shape=[-1, DIGIT_PIXELS])]
OUTPUTS = [
    TensorMetadata(name="probabilities", datatype="FP32", shape=[-1, CLASSES]),
    TensorMetadata(name="digit", datatype="INT64", shape=[-1]),
    TensorMetadata(name="probability", datatype="FP32", shape=[-1]),
]
ACCEPTS_THRESHOLD = False


def to_matrix(inputs: list[WireInput], max_batch: int) -> np.ndarray:
    """`pixels` → the (N, 64) float32 matrix, every value a count 0..16 (the /predict/digit range)."""
    tensor = by_name(inputs, (INPUT,), (INPUT,))[INPUT]
    size = batch_size({INPUT: tensor}, {INPUT: check_shape(tensor, _SHAPES)}, max_batch)
    values = decode(tensor, ("FP32",)).reshape(size, DIGIT_PIXELS)
    bad = np.isnan(values) | (values < 0) | (values > DIGIT_MAX_VALUE)
    if bad.any():
        row, pixel = divmod(first(bad.reshape(-1)), DIGIT_PIXELS)
        value = values[row, pixel]
        what = "null" if np.isnan(value) else show(float(value))
        raise bad_request(
            f"input {INPUT!r}: {what} at row {row}, pixel {pixel} is not an ink count within 0..{DIGIT_MAX_VALUE}",
            "range",
        )
    return values.astype(np.float32)


def outputs(predictor: Any, matrix: np.ndarray, threshold: float | None) -> dict[str, Callable[[], ResponseOutput]]:
    """Predict, and return each output as a builder: only the outputs asked for are encoded."""
    probabilities, digits, best = predictor.predict_matrix(matrix)
    rows = len(digits)
    return {
        "probabilities": lambda: ResponseOutput(
            "probabilities", [rows, CLASSES], "FP32", probabilities.reshape(-1).tolist()
        ),
        "digit": lambda: ResponseOutput("digit", [rows], "INT64", digits.tolist()),
        "probability": lambda: ResponseOutput("probability", [rows], "FP32", best.tolist()),
    }
