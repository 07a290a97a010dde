"""The heart-disease model: 13 clinical features in, P(disease) out, decided at a threshold that a
request may override. Its features, ranges and categories are contract.HEART_FEATURES."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from msgspec import Meta, Struct

from service.contract import HEART_EXAMPLE, HEART_FEATURES, HEART_LABELS, HEART_ONNX_INPUT, HEART_ONNX_OUTPUT
from service.models.base import Docs, TensorOutput, batch_answer
from service.models.tabular import ShapleyExplanation, TabularModel, request_struct
from service.models.tensors import Categorical

_LABELS = np.array(HEART_LABELS, dtype=object)  # decision → label, for output_tensors

EXAMPLE_VERSION = "20261122T033459Z-1eaa01b9"
_PARTIAL_PATIENT = {**HEART_EXAMPLE, "ca": None, "thal": None}


class HeartPrediction(Struct):
    probability: Annotated[float, Meta(description="probability of heart disease")]
    threshold: Annotated[float, Meta(description="decision threshold: prediction is 1 when probability ≥ it")]
    prediction: Literal[0, 1]
    label: Literal[HEART_LABELS]  # type: ignore[valid-type]
    missing: Annotated[list[str], Meta(description="fields that were null or absent (treated as missing)")]
    version: str


class HeartBatchRow(Struct):
    probability: float
    prediction: Literal[0, 1]
    label: Literal[HEART_LABELS]  # type: ignore[valid-type]
    missing: list[str]


HeartBatchPrediction = batch_answer("HeartBatchPrediction", HeartBatchRow)


class HeartExplainedPrediction(HeartPrediction, kw_only=True):
    explanation: ShapleyExplanation


class HeartExplainedBatchRow(HeartBatchRow, kw_only=True):
    explanation: ShapleyExplanation


HeartExplainedBatchPrediction = batch_answer("HeartExplainedBatchPrediction", HeartExplainedBatchRow)
# The tutorial's patient explained: illustrative figures of the shape a trained version gives (base + contributions
# = the probability of the response example).
_EXPLANATION = {
    "method": "shapley",
    "unit": "probability",
    "base": 0.4021,
    "contributions": {
        "age": 0.0312, "sex": -0.0871, "cp": -0.0968, "trestbps": -0.0021, "chol": 0.0148, "fbs": 0.0052,
        "restecg": 0.0187, "thalach": 0.0263, "exang": -0.0301, "oldpeak": 0.0902, "slope": 0.1206,
        "ca": -0.0575, "thal": 0.2989,
    },
}  # fmt: skip


class HeartModel(TabularModel):
    name = "heart"
    route = "heart"
    labels = HEART_LABELS
    features = HEART_FEATURES
    example = HEART_EXAMPLE
    onnx_input = HEART_ONNX_INPUT
    onnx_output = HEART_ONNX_OUTPUT
    output_shape = (-1,)
    overridable_threshold = True
    request = request_struct("HeartPatient", HEART_FEATURES, HEART_EXAMPLE)
    response = HeartPrediction
    batch_response = HeartBatchPrediction
    explained_types = (HeartExplainedPrediction, HeartExplainedBatchRow, HeartExplainedBatchPrediction)
    tensor_outputs = (
        TensorOutput("probability", "FP32"),
        TensorOutput("prediction", "INT64"),
        TensorOutput("label", "BYTES"),
    )
    docs = Docs(
        summary="Predict heart disease",
        description="`age` and `sex` are required; other fields may be null or absent (missing).",
        batch_description="One invalid row rejects the request; the error names the row (`instances.3.age`).",
        requests={"the tutorial's patient": HEART_EXAMPLE, "a record without ca and thal": _PARTIAL_PATIENT},
        response={
            "probability": 0.7344,
            "threshold": 0.36,
            "prediction": 1,
            "label": "disease",
            "missing": [],
            "version": EXAMPLE_VERSION,
        },
        batch_response={
            "predictions": [
                {"probability": 0.7344, "prediction": 1, "label": "disease", "missing": []},
                {"probability": 0.1021, "prediction": 0, "label": "no disease", "missing": ["ca", "thal"]},
            ],
            "version": EXAMPLE_VERSION,
            "threshold": 0.36,
        },
        explained_response={
            "probability": 0.7344,
            "threshold": 0.36,
            "prediction": 1,
            "label": "disease",
            "missing": [],
            "version": EXAMPLE_VERSION,
            "explanation": _EXPLANATION,
        },
        explained_batch_response={
            "predictions": [
                {"probability": 0.7344, "prediction": 1, "label": "disease", "missing": [], "explanation": _EXPLANATION}
            ],
            "version": EXAMPLE_VERSION,
            "threshold": 0.36,
        },
        tensor_requests={
            "the tutorial's patient, with a lower threshold": {
                "id": "patient-1",
                "parameters": {"threshold": 0.3},
                "inputs": [
                    {
                        "name": spec.name,
                        "shape": [1, 1],
                        "datatype": "BYTES" if isinstance(HEART_EXAMPLE[spec.name], str) else "FP32",
                        "data": [HEART_EXAMPLE[spec.name]],
                    }
                    for spec in HEART_FEATURES
                ],
                "outputs": [{"name": "probability"}, {"name": "label"}],
            },
            "two patients, `ca` left out (missing for both), one `chol` null (missing)": {
                "inputs": [
                    {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [[61], [45]]},
                    {"name": "sex", "shape": [2, 1], "datatype": "INT64", "data": [[1], [0]]},
                    {"name": "chol", "shape": [2], "datatype": "FP32", "data": [233.0, None]},
                    {"name": "thal", "shape": [2, 1], "datatype": "BYTES", "data": ["fixed", None]},
                ]
            },
        },
    )

    def run(self, matrix: np.ndarray) -> np.ndarray:
        return self.session.predict(matrix).reshape(-1)

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        return outputs

    def decide(self, outputs: np.ndarray, threshold: float) -> np.ndarray:
        return (outputs >= threshold).astype(np.int64)

    def decide_one(self, output: Any, threshold: float) -> int:
        return int(output >= threshold)

    def answer(self, output: Any, decision: int, row: Any, threshold: float) -> HeartPrediction:
        return HeartPrediction(
            probability=float(output),
            threshold=threshold,
            prediction=decision,  # type: ignore[arg-type]
            label=HEART_LABELS[decision],
            missing=[self.counted_missing[column] for column in self.missing(row)],
            version=self.version,
        )

    def answer_batch(
        self, outputs: np.ndarray, decisions: np.ndarray, matrix: np.ndarray, threshold: float
    ) -> HeartBatchPrediction:
        predictions = decisions.tolist()
        rows = list(
            map(
                HeartBatchRow,
                outputs.tolist(),
                predictions,
                map(HEART_LABELS.__getitem__, predictions),
                self.missing_names(matrix),
            )
        )
        return HeartBatchPrediction(predictions=rows, version=self.version, threshold=threshold)

    @staticmethod
    def reference_outputs(output: Any) -> list[float]:
        return [float(output)]

    def output_tensors(
        self, outputs: np.ndarray, decisions: np.ndarray
    ) -> dict[str, Callable[[], tuple[list[int], list[Any] | np.ndarray | Categorical]]]:
        # Arrays, not lists: a 1000-row binary answer's three outputs took 144–216 µs through Python lists
        # (tolist, then back to bytes; a label per row) and take 48–77 µs so (timeit, same runs, busy machine).
        # The label as a Categorical (the decisions index the labels): framed once per label, then gathered.
        shape = [len(decisions)]
        return {
            "probability": lambda: (shape, outputs),
            "prediction": lambda: (shape, decisions),
            "label": lambda: (shape, Categorical(decisions, _LABELS)),
        }

    def row_output_tensors(self, output: Any, decision: int) -> dict[str, tuple[str, list[int], list[Any]]]:
        # output_tensors' values for one row without numpy (~0.5 µs against ~4): float() of the float32
        # probability is the double its .tolist() gives, so the JSON text is the same (tests/v2/test_single.py).
        return {
            "probability": ("FP32", [1], [float(output)]),
            "prediction": ("INT64", [1], [decision]),
            "label": ("BYTES", [1], [HEART_LABELS[decision]]),
        }
