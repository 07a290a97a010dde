"""The handwritten-digit model: 8×8 ink counts (or any grey image, made into them) in, ten class
probabilities out; an answer below the manifest's minimum confidence is flagged as not confident."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from msgspec import UNSET, Meta, Struct, UnsetType

from service.contract import (
    DIGIT_LABELS,
    DIGIT_MAX_VALUE,
    DIGIT_PIXELS,
    DIGIT_SIDE,
    DIGITS_ONNX_INPUT,
    DIGITS_ONNX_OUTPUT,
    PixelSpec,
)
from service.drift import CLASSIFICATION_STATISTICS, IMAGE_STATISTICS, classification_statistics, image_statistics
from service.errors import BLANK_IMAGE, RANGE, SCHEMA, SIZE, ServiceError, invalid, join_path
from service.image import BlankImageError, image_to_pixels
from service.models.base import Docs, ExplainPlan, Model, TensorInput, TensorOutput, batch_answer
from service.models.tensors import first, show

IMAGE_MIN_SIDE = 8
IMAGE_MAX_SIDE = 512
GREY_MAX = 255
CLASSES = len(DIGIT_LABELS)
EXAMPLE_VERSION = "20261122T033533Z-9f9911a2"
# sklearn's first digit (a 0) and the same digit drawn dark on light as an image.
ZERO_PIXELS = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8,
               8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10,
               0, 0, 0]  # fmt: skip
ZERO_IMAGE = [[255 - v * 15 for v in ZERO_PIXELS[row * 8 : row * 8 + 8]] for row in range(8)]
_PROBABILITIES = [0.9991, 0.0, 0.0001, 0.0, 0.0002, 0.0001, 0.0003, 0.0, 0.0001, 0.0001]
# An illustrative occlusion map of the shape the model gives: ink on the 0's ring supports it.
_MAP = [
    [round(0.004 * v * (1 if 1 <= c <= 6 else 0), 4) for c, v in enumerate(ZERO_PIXELS[r * 8 : r * 8 + 8])]
    for r in range(8)
]
_EXPLANATION = {"method": "occlusion", "unit": "probability", "digit": 0, "base": 0.0412, "map": _MAP}

Pixels = Annotated[
    list[Annotated[float, Meta(ge=0, le=DIGIT_MAX_VALUE)]],
    Meta(
        min_length=DIGIT_PIXELS,
        max_length=DIGIT_PIXELS,
        description="64 ink counts 0..16, row-major 8×8, as in sklearn's digits",
    ),
]
ImageRow = Annotated[
    list[Annotated[float, Meta(ge=0, le=GREY_MAX)]], Meta(min_length=IMAGE_MIN_SIDE, max_length=IMAGE_MAX_SIDE)
]
Image = Annotated[
    list[ImageRow],
    Meta(
        min_length=IMAGE_MIN_SIDE,
        max_length=IMAGE_MAX_SIDE,
        description="grey levels 0..255, rows of equal length, 8×8 to 512×512; ink dark or bright",
    ),
]


class DigitInput(Struct, kw_only=True, forbid_unknown_fields=True):
    """One digit: exactly one of `pixels` (the model's own 8×8 input) or `image` (any grey image)."""

    pixels: Pixels | None = None
    image: Image | None = None


class DigitPrediction(Struct):
    digit: Annotated[int, Meta(ge=0, le=9)]
    probability: Annotated[float, Meta(description="probability of `digit`")]
    probabilities: Annotated[list[float], Meta(description="probability of each digit 0..9")]
    threshold: Annotated[float, Meta(description="the model's minimum confidence")]
    confident: Annotated[bool, Meta(description="probability ≥ threshold")]
    version: str
    pixels: Annotated[
        list[float] | UnsetType,
        Meta(description="with `?pixels=true`: the 64 ink counts (8×8, row-major) the model saw"),
    ] = UNSET


class DigitBatchRow(Struct):
    digit: int
    probability: float
    probabilities: list[float]
    confident: bool


DigitBatchPrediction = batch_answer("DigitBatchPrediction", DigitBatchRow)


class OcclusionMap(Struct):
    """Why this digit (`?explain=true`): an occlusion map of the predicted digit's probability."""

    method: Annotated[
        Literal["occlusion"],
        Meta(
            description="per pixel, P(digit) minus P(digit) with that one pixel set to the background's (the "
            "training split's mean image, background.json); unlike Shapley values these do not add up to "
            "the answer minus `base`"
        ),
    ]
    unit: Annotated[Literal["probability"], Meta(description="map values and base are in probability")]
    digit: Annotated[int, Meta(description="the class explained: the predicted digit")]
    base: Annotated[float, Meta(description="P(digit) for the background image")]
    map: Annotated[list[list[float]], Meta(description="8×8, row-major like `pixels`; > 0: the pixel supports it")]


class DigitExplainedPrediction(DigitPrediction, kw_only=True):
    explanation: OcclusionMap


class DigitExplainedBatchRow(DigitBatchRow, kw_only=True):
    explanation: OcclusionMap


DigitExplainedBatchPrediction = batch_answer("DigitExplainedBatchPrediction", DigitExplainedBatchRow)


class DigitsModel(Model):
    name = "digits"
    route = "digit"
    labels = DIGIT_LABELS
    onnx_input = DIGITS_ONNX_INPUT
    onnx_output = DIGITS_ONNX_OUTPUT
    input_width = DIGIT_PIXELS
    output_shape = (-1, CLASSES)
    input_echo = "pixels"
    request = DigitInput
    response = DigitPrediction
    batch_response = DigitBatchPrediction
    explained_types = (DigitExplainedPrediction, DigitExplainedBatchRow, DigitExplainedBatchPrediction)
    tensor_inputs = (TensorInput("pixels", ("FP32",), ((DIGIT_PIXELS,), (DIGIT_SIDE, DIGIT_SIDE))),)
    tensor_outputs = (
        TensorOutput("probabilities", "FP32", (CLASSES,)),
        TensorOutput("digit", "INT64"),
        TensorOutput("probability", "FP32"),
    )
    docs = Docs(
        summary="Recognise a handwritten digit",
        description="Exactly one of `pixels` (8×8 counts 0..16) or `image` (grey levels 0..255).",
        batch_description="One invalid item rejects the request; the error names the item (`instances.2.image`).",
        requests={
            "8×8 ink counts (sklearn digits)": {"pixels": ZERO_PIXELS},
            "a grey image, dark ink on light": {"image": ZERO_IMAGE},
        },
        response={
            "digit": 0,
            "probability": 0.9991,
            "probabilities": _PROBABILITIES,
            "threshold": 0.89,
            "confident": True,
            "version": EXAMPLE_VERSION,
        },
        batch_response={
            "predictions": [{"digit": 0, "probability": 0.9991, "probabilities": _PROBABILITIES, "confident": True}],
            "version": EXAMPLE_VERSION,
            "threshold": 0.89,
        },
        explained_response={
            "digit": 0,
            "probability": 0.9991,
            "probabilities": _PROBABILITIES,
            "threshold": 0.89,
            "confident": True,
            "version": EXAMPLE_VERSION,
            "explanation": _EXPLANATION,
        },
        explained_batch_response={
            "predictions": [
                {
                    "digit": 0,
                    "probability": 0.9991,
                    "probabilities": _PROBABILITIES,
                    "confident": True,
                    "explanation": _EXPLANATION,
                }
            ],
            "version": EXAMPLE_VERSION,
            "threshold": 0.89,
        },
        tensor_requests={
            "one 8×8 digit": {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ZERO_PIXELS}]}
        },
        # `image` and `pixels` may each be null or absent, but exactly one of them must be an array.
        one_of=[{"required": [name], "properties": {name: {"type": "array"}}} for name in ("pixels", "image")],
    )

    def check_manifest(self, manifest: Any) -> None:
        super().check_manifest(manifest)
        expected = PixelSpec(count=DIGIT_PIXELS, minimum=0, maximum=DIGIT_MAX_VALUE, side=DIGIT_SIDE)
        if manifest.inputs.pixels != expected:
            raise self.refuse(f"inputs.pixels should be {expected}, got {manifest.inputs.pixels}")

    # row() lets through only instances with one of `pixels` or `image`: one key each, at least
    def read_row(self, item: Any, path: str) -> tuple[np.ndarray | list[float], int]:
        return self.row(item, path), 1

    def read_matrix(self, items: list[Any]) -> tuple[np.ndarray, int]:
        return self.matrix(items), len(items)

    def row(self, item: Any, path: str) -> np.ndarray | list[float]:
        if (item.pixels is None) == (item.image is None):
            given = "both were given" if item.pixels is not None else "neither was given"
            raise invalid([(join_path(path, "pixels"), f"give exactly one of `pixels` or `image`: {given}")], SCHEMA)
        if item.pixels is not None:
            return item.pixels
        image = item.image
        width = len(image[0])
        for index, line in enumerate(image):
            if len(line) != width:
                reason = f"rows must be of equal length: row 0 has {width} values, row {index} has {len(line)}"
                raise invalid([(join_path(path, f"image.{index}"), reason)], SIZE)
        try:
            return image_to_pixels(np.array(image, dtype=np.float64))
        except BlankImageError as error:
            raise invalid([(join_path(path, "image"), str(error))], BLANK_IMAGE) from None

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.max(axis=1)

    # What shifts when the images come from elsewhere: ink, its extent and position; and the answers.
    drift_columns = IMAGE_STATISTICS + CLASSIFICATION_STATISTICS

    def drift_values(self, matrix: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        images = image_statistics(matrix, DIGIT_SIDE)
        return np.hstack([images, classification_statistics(outputs, self.threshold)])

    def decide(self, outputs: np.ndarray, threshold: float) -> np.ndarray:
        return outputs.argmax(axis=1)

    def decide_one(self, output: Any, threshold: float) -> int:
        return int(output.argmax())

    def answer(self, output: Any, decision: int, row: Any, threshold: float) -> DigitPrediction:
        probability = float(output[decision])
        return DigitPrediction(
            digit=decision,
            probability=probability,
            probabilities=output.tolist(),
            threshold=self.threshold,
            confident=probability >= self.threshold,
            version=self.version,
        )

    def answer_batch(
        self, outputs: np.ndarray, decisions: np.ndarray, matrix: np.ndarray, threshold: float
    ) -> DigitBatchPrediction:
        best = outputs[np.arange(len(outputs)), decisions]
        predictions = list(
            map(
                DigitBatchRow,
                decisions.tolist(),
                best.tolist(),
                outputs.tolist(),
                (best >= self.threshold).tolist(),
            )
        )
        return DigitBatchPrediction(predictions=predictions, version=self.version, threshold=self.threshold)

    def _explain_plan(self, matrix: np.ndarray, outputs: np.ndarray, decisions: np.ndarray) -> ExplainPlan:
        assert self.background is not None and self.background_outputs is not None  # explain_plan checked
        rows, pixels = len(matrix), DIGIT_PIXELS
        # Per image: itself, then 64 copies each with one pixel set to the background's.
        occluded = np.repeat(matrix[:, None, :], pixels + 1, axis=1)
        occluded[:, np.arange(1, pixels + 1), np.arange(pixels)] = self.background[0]
        bases = self.background_outputs[0]

        def finish(coalition_outputs: np.ndarray) -> list[OcclusionMap]:
            probabilities = coalition_outputs.reshape(rows, pixels + 1, CLASSES)[np.arange(rows), :, decisions]
            maps = (probabilities[:, :1] - probabilities[:, 1:]).reshape(rows, DIGIT_SIDE, DIGIT_SIDE).tolist()
            return [
                OcclusionMap("occlusion", "probability", digit, float(bases[digit]), grid)
                for digit, grid in zip(decisions.tolist(), maps, strict=True)
            ]

        return ExplainPlan(occluded.reshape(-1, pixels), finish)

    def explanation_output(self) -> TensorOutput | None:
        return TensorOutput("contributions", "FP64", (DIGIT_SIDE, DIGIT_SIDE))  # the predicted digit's map

    def explanation_tensor(self, explanations: list[Any]) -> tuple[list[int], list[float]]:
        values = [value for explanation in explanations for line in explanation.map for value in line]
        return [len(explanations), DIGIT_SIDE, DIGIT_SIDE], values

    @staticmethod
    def reference_outputs(output: Any) -> list[float]:
        return [float(value) for value in output]

    def tensor_matrix(self, tensors: dict[str, np.ndarray], rows: int) -> np.ndarray:
        values = tensors["pixels"].reshape(rows, DIGIT_PIXELS)
        bad = np.isnan(values) | (values < 0) | (values > DIGIT_MAX_VALUE)
        if bad.any():
            row, pixel = divmod(first(bad.reshape(-1)), DIGIT_PIXELS)
            value = values[row, pixel]
            what = "null" if np.isnan(value) else show(float(value))
            message = (
                f"input 'pixels': {what} at row {row}, pixel {pixel} is not an ink count within 0..{DIGIT_MAX_VALUE}"
            )
            raise ServiceError(400, "bad_request", message, reason=RANGE)
        return values.astype(np.float32)

    def output_tensors(
        self, outputs: np.ndarray, decisions: np.ndarray
    ) -> dict[str, Callable[[], tuple[list[int], list[Any]]]]:
        rows = len(decisions)
        best = outputs[np.arange(rows), decisions]
        return {
            "probabilities": lambda: ([rows, CLASSES], outputs.reshape(-1).tolist()),
            "digit": lambda: ([rows], decisions.tolist()),
            "probability": lambda: ([rows], best.tolist()),
        }
