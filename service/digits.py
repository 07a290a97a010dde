"""The digit request path: JSON bytes → `pixels` or an `image` made into pixels → ONNX → JSON bytes."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import numpy as np

from service.artifact import Artifact, ArtifactError
from service.batching import MicroBatcher
from service.contract import (
    DIGIT_LABELS,
    DIGIT_MAX_VALUE,
    DIGIT_PIXELS,
    DIGIT_SIDE,
    DIGITS_ONNX_INPUT,
    DIGITS_ONNX_OUTPUT,
    MANIFEST_FILE,
)
from service.errors import from_decode_error, invalid, join_path
from service.image import BlankImageError, image_to_pixels
from service.metrics import ModelMetrics, inc_counts
from service.runtime import open_artifact_model
from service.schemas import (
    DigitBatchPrediction,
    DigitBatchRow,
    DigitInput,
    DigitPrediction,
    batch_type,
)

CLASSES = len(DIGIT_LABELS)


def _row(item: Any, path: str) -> np.ndarray | list[float]:
    """One validated DigitInput → its 64 model inputs; raises ApiError naming the field at `path`."""
    if (item.pixels is None) == (item.image is None):
        given = "both were given" if item.pixels is not None else "neither was given"
        raise invalid([(join_path(path, "pixels"), f"give exactly one of `pixels` or `image`: {given}")])
    if item.pixels is not None:
        return item.pixels
    image = item.image
    width = len(image[0])
    for index, row in enumerate(image):
        if len(row) != width:
            raise invalid(
                [
                    (
                        join_path(path, f"image.{index}"),
                        f"rows must be of equal length: row 0 has {width} values, row {index} has {len(row)}",
                    )
                ]
            )
    try:
        return image_to_pixels(np.array(image, dtype=np.float64))
    except BlankImageError as error:
        raise invalid([(join_path(path, "image"), str(error))]) from None


class DigitPredictor:
    """The loaded digits model and the whole request path for it."""

    name = "digits"

    def __init__(self, artifact: Artifact, max_batch: int) -> None:
        self.version = artifact.version
        _check_manifest(artifact)
        self.threshold = float(artifact.manifest["threshold"]["value"])
        self.model = open_artifact_model(
            artifact,
            input_name=DIGITS_ONNX_INPUT,
            input_width=DIGIT_PIXELS,
            output_name=DIGITS_ONNX_OUTPUT,
            output_shape=[-1, CLASSES],
        )
        self.batcher = MicroBatcher(self._run)
        self._decode_one = msgspec.json.Decoder(DigitInput).decode
        self._decode_many = msgspec.json.Decoder(batch_type(DigitInput, max_batch)).decode
        self._encode = msgspec.json.Encoder().encode
        # Set by the registry once the self-check passed, so that its reference rows are not counted.
        self.metrics: ModelMetrics | None = None

    def _run(self, matrix: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        probabilities = self.model.predict(matrix)
        if (metrics := self.metrics) is not None:
            metrics.observe_call(len(probabilities), time.perf_counter() - started)
            metrics.probability.observe_many(probabilities.max(axis=1))
        return probabilities

    async def predict_one(self, body: bytes, threshold: float | None = None) -> bytes:
        """One digit's JSON → the prediction's JSON (raises ApiError for bad input)."""
        try:
            item = self._decode_one(body)
        except msgspec.DecodeError as error:
            raise from_decode_error(error, body) from None
        probabilities = await self.batcher.predict(_row(item, ""))
        digit = int(probabilities.argmax())
        probability = float(probabilities[digit])
        if (metrics := self.metrics) is not None:
            metrics.labels[digit].inc()
        return self._encode(
            DigitPrediction(
                digit=digit,
                probability=probability,
                probabilities=probabilities.tolist(),
                threshold=self.threshold,
                confident=probability >= self.threshold,
                version=self.version,
            )
        )

    def predict_batch(self, body: bytes, threshold: float | None = None) -> bytes:
        """`{"instances": [...]}` → `{"predictions": [...]}`; one bad item rejects the whole request."""
        try:
            items = self._decode_many(body).instances
        except msgspec.DecodeError as error:
            raise from_decode_error(error, body) from None
        rows = [_row(item, f"instances.{index}") for index, item in enumerate(items)]
        probabilities, digits, best = self.predict_matrix(np.array(rows, dtype=np.float32))
        predictions = list(
            map(
                DigitBatchRow,
                digits.tolist(),
                best.tolist(),
                probabilities.tolist(),
                (best >= self.threshold).tolist(),
            )
        )
        return self._encode(
            DigitBatchPrediction(predictions=predictions, version=self.version, threshold=self.threshold)
        )

    def predict_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A validated (rows, 64) float32 matrix → the 10 probabilities per row, the digit and its probability.

        One model call, counted in the model metrics like a batch request: the batch route and the Open
        Inference Protocol route (service.v2) both predict through here.
        """
        probabilities = self._run(matrix)
        digits = probabilities.argmax(axis=1)
        best = probabilities[np.arange(len(probabilities)), digits]
        if (metrics := self.metrics) is not None:
            inc_counts(metrics.labels, np.bincount(digits, minlength=CLASSES))
        return probabilities, digits, best

    @staticmethod
    def outputs_of(row: dict[str, Any]) -> list[float]:
        """The probabilities in one response row, as reference.json records them (the self-check)."""
        return row["probabilities"]


def _check_manifest(artifact: Artifact) -> None:
    """The manifest must describe the 8×8 input and 10-class output this service produces and reads."""
    manifest, version = artifact.manifest, artifact.version

    def refuse(reason: str) -> ArtifactError:
        return ArtifactError("digits", version, MANIFEST_FILE, reason)

    inputs = manifest.get("inputs") or {}
    onnx = inputs.get("onnx") or {}
    if onnx.get("name") != DIGITS_ONNX_INPUT or list(onnx.get("shape") or []) != [-1, DIGIT_PIXELS]:
        raise refuse(f"inputs.onnx should be {DIGITS_ONNX_INPUT!r} of shape [-1, {DIGIT_PIXELS}], got {onnx}")
    pixels = inputs.get("pixels") or {}
    expected = {"count": DIGIT_PIXELS, "minimum": 0, "maximum": DIGIT_MAX_VALUE, "side": DIGIT_SIDE}
    if {key: pixels.get(key) for key in expected} != expected:
        raise refuse(f"inputs.pixels should be {expected}, got {pixels}")
    output = (manifest.get("outputs") or {}).get("onnx") or {}
    if output.get("name") != DIGITS_ONNX_OUTPUT or list(output.get("shape") or []) != [-1, CLASSES]:
        raise refuse(f"outputs.onnx should be {DIGITS_ONNX_OUTPUT!r} of shape [-1, {CLASSES}]")
    if list(manifest["labels"]) != list(DIGIT_LABELS):
        raise refuse(f"labels should be {list(DIGIT_LABELS)}")
    threshold = manifest["threshold"]
    value = threshold.get("value") if isinstance(threshold, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise refuse(f"threshold.value {value!r} is not between 0 and 1")
