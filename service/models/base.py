"""The Model interface: one subclass per model holds everything that is specific to it.

After MLServer's `MLModel`, lighter: a `Model` is one loaded, verified version. It checks its manifest,
opens its ONNX graph, and knows its wire forms: the request and response schemas of
`POST /predict/<route>`, how validated requests and protocol tensors become the ONNX input matrix, how
ONNX outputs become answers and output tensors, and its OpenAPI examples. It knows nothing of HTTP,
batching, metrics or reloads (service.dataplane), nor of any protocol's envelope (service.api).

A subclass registers itself in MODEL_CLASSES under its `name`, the `name` of its artifacts' manifests;
the data plane finds the class to load a version with by that name. Adding a model is one module here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import msgspec
import numpy as np

from service.artifact import Artifact, ArtifactError
from service.contract import BACKGROUND_FILE, MANIFEST_FILE, Manifest
from service.errors import QUERY, invalid
from service.runtime import open_artifact_model

MODEL_CLASSES: dict[str, type[Model]] = {}
# Rows one request may ask to explain: a heart row costs up to 4 × 8,192 coalition rows (background.json has 4;
# about 3,300 for a typical patient). 16 patients that differ from every background row in all features are
# 454,656 rows in one onnxruntime call: ~0.75 s of CPU and ~200 MB of peak memory, measured.
EXPLAIN_LIMIT = 16
Row = Sequence[float | None] | np.ndarray


@dataclass(frozen=True)
class TensorInput:
    """One input tensor a model takes over the Open Inference Protocol: `[N, *tail]` for one of `tails`."""

    name: str
    datatypes: tuple[str, ...]  # the first is the one its metadata advertises
    tails: tuple[tuple[int, ...], ...]
    required: bool = True


@dataclass(frozen=True)
class TensorOutput:
    """One output tensor: its name, datatype, and shape after the batch dimension."""

    name: str
    datatype: str
    tail: tuple[int, ...] = ()


@dataclass(frozen=True)
class ExplainPlan:
    """What explaining some answered rows takes: `rows` for one onnxruntime call, and `finish`, which
    turns that call's outputs into one explanation per answered row."""

    rows: np.ndarray
    finish: Callable[[np.ndarray], list[Any]]


@dataclass(frozen=True)
class Docs:
    """What OpenAPI shows for a model's routes: summaries, body descriptions and examples (name → value)."""

    summary: str
    description: str
    batch_description: str
    requests: dict[str, Any]
    response: dict[str, Any]
    batch_response: dict[str, Any]
    tensor_requests: dict[str, Any]  # Open Inference Protocol request bodies, by summary
    # JSON Schema `oneOf` alternatives of one instance that its type alone cannot say (digits: pixels or image)
    one_of: list[dict[str, Any]] | None = None
    explained_response: dict[str, Any] | None = None  # `response` with `?explain=true`
    explained_batch_response: dict[str, Any] | None = None


def batch_answer(name: str, row: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The answer to a batch: `{"predictions": [row, ...], "version", "threshold"}`, the same for every model."""
    fields = [
        ("predictions", list[row]),  # type: ignore[valid-type]
        ("version", str),
        ("threshold", Annotated[float, msgspec.Meta(description="the threshold every row was decided at")]),
    ]
    return msgspec.defstruct(name, fields, module=row.__module__)


class Model(ABC):
    """One verified version of one model, ready to predict."""

    name: ClassVar[str]  # the manifest's `name` and the artifacts directory
    route: ClassVar[str]  # POST /predict/<route> and /predict/<route>/batch
    labels: ClassVar[tuple[str, ...]]
    onnx_input: ClassVar[str]
    onnx_output: ClassVar[str]
    input_width: ClassVar[int]
    output_shape: ClassVar[tuple[int, ...]]  # with -1 for the batch
    request: ClassVar[type[msgspec.Struct]]  # one instance as POST /predict/<route> takes it
    response: ClassVar[type[msgspec.Struct]]  # its answer
    batch_response: ClassVar[type[msgspec.Struct]]  # the answer to `{"instances": [...]}`
    tensor_inputs: ClassVar[tuple[TensorInput, ...]]
    tensor_outputs: ClassVar[tuple[TensorOutput, ...]]
    docs: ClassVar[Docs]
    # Input drift (service.drift): the columns `drift_values` gives, named as the manifest's `drift` names them
    drift_columns: ClassVar[tuple[str, ...]] = ()
    overridable_threshold: ClassVar[bool] = False  # a request may set its own decision threshold
    # (response, batch row, batch answer) with an `explanation` field, for models that explain
    explained_types: ClassVar[tuple[type[msgspec.Struct], type[msgspec.Struct], type[msgspec.Struct]] | None] = None
    counted_missing: ClassVar[tuple[str, ...]] = ()  # input columns whose absence is counted (metrics)
    choices: ClassVar[dict[str, str]] = {}  # field → allowed categories, quoted in validation errors
    # `?<input_echo>=true` on the single route adds the input row the model saw to the answer, under this
    # name (a field of `response`); digits: `pixels`, the 8×8 grid an image became
    input_echo: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # concrete models only; intermediate bases have no name
            MODEL_CLASSES[cls.name] = cls

    def __init__(self, artifact: Artifact) -> None:
        self.version = artifact.version
        self.manifest: Manifest = artifact.manifest
        self.check_manifest(artifact.manifest)
        self.threshold = artifact.manifest.threshold.value
        self.session = open_artifact_model(
            artifact,
            input_name=self.onnx_input,
            input_width=self.input_width,
            output_name=self.onnx_output,
            output_shape=list(self.output_shape),
        )
        # Explanations: the background rows and the model's outputs on them (the base values), or None for a
        # version built before explanations existed (it serves predictions; `?explain=true` is refused).
        self.background = self._background(artifact)
        self.background_outputs = None if self.background is None else self.run(self.background)

    # ---- the artifact --------------------------------------------------------------------------

    def refuse(self, reason: str) -> ArtifactError:
        return ArtifactError(self.name, self.version, MANIFEST_FILE, reason)

    def check_manifest(self, manifest: Manifest) -> None:
        """The manifest must describe the tensors and labels this class feeds and reads; subclasses add
        their own input checks (and call this)."""
        onnx_in, onnx_out = manifest.inputs.onnx, manifest.outputs.onnx
        if onnx_in.name != self.onnx_input or onnx_in.shape != [-1, self.input_width]:
            raise self.refuse(
                f"inputs.onnx should be {self.onnx_input!r} of shape [-1, {self.input_width}], "
                f"got {onnx_in.name!r} of shape {onnx_in.shape}"
            )
        if onnx_out.name != self.onnx_output or onnx_out.shape != list(self.output_shape):
            raise self.refuse(f"outputs.onnx should be {self.onnx_output!r} of shape {list(self.output_shape)}")
        if list(manifest.labels) != list(self.labels):
            raise self.refuse(f"labels should be {list(self.labels)}")
        if manifest.drift is not None:
            if [c.name for c in manifest.drift.columns] != list(self.drift_columns):
                raise self.refuse(f"drift.columns should be {list(self.drift_columns)}")
            if problem := next(filter(None, (c.problem() for c in manifest.drift.columns)), None):
                raise self.refuse(problem)

    # ---- the request path ----------------------------------------------------------------------

    def run(self, matrix: np.ndarray) -> np.ndarray:
        """One onnxruntime call on a validated (rows, input_width) float32 matrix."""
        return self.session.predict(matrix)

    @abstractmethod
    def row(self, item: Any, path: str) -> Row:
        """One validated request instance → its input row (None where missing); `path` prefixes the
        field named by a ServiceError (`instances.3`)."""

    def matrix(self, items: list[Any]) -> np.ndarray:
        """Validated request instances → the (rows, input_width) float32 matrix (NaN where missing)."""
        return np.array([self.row(item, f"instances.{index}") for index, item in enumerate(items)], dtype=np.float32)

    def read_row(self, item: Any, path: str) -> tuple[Row, int]:
        """`row`, and how many distinct JSON keys the instance held: exact, or a lower bound (0 by default),
        which service.api.repeated_keys compares with the body's colons to skip parsing it again."""
        return self.row(item, path), 0

    def read_matrix(self, items: list[Any]) -> tuple[np.ndarray, int]:
        """`matrix`, and how many distinct JSON keys the instances held (as read_row)."""
        return self.matrix(items), 0

    def drift_values(self, matrix: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Per row, the monitored columns (float32, NaN where missing) of one call's input matrix and
        outputs; by default the input matrix's own columns."""
        return matrix

    @abstractmethod
    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """Per row, the probability the predicted-probability histogram observes."""

    @abstractmethod
    def decide(self, outputs: np.ndarray, threshold: float) -> np.ndarray:
        """Per row, the index of the predicted label."""

    @abstractmethod
    def decide_one(self, output: Any, threshold: float) -> int:
        """`decide` for the output of one row (a scalar or a vector)."""

    def missing(self, row: Row) -> list[int]:
        """The columns of one row that are missing (None), for the missing-field counts."""
        if not self.counted_missing or None not in row:  # the common case, checked in C
            return []
        return [column for column, value in enumerate(row) if value is None]

    @abstractmethod
    def answer(self, output: Any, decision: int, row: Row, threshold: float) -> msgspec.Struct:
        """The response to one instance."""

    @abstractmethod
    def answer_batch(
        self, outputs: np.ndarray, decisions: np.ndarray, matrix: np.ndarray, threshold: float
    ) -> msgspec.Struct:
        """The response to a batch."""

    @staticmethod
    @abstractmethod
    def reference_outputs(output: Any) -> list[float]:
        """One row's output as `reference.json` records it (the self-check compares the two)."""

    # ---- explanations (`?explain=true`) --------------------------------------------------------

    def _background(self, artifact: Artifact) -> np.ndarray | None:
        if artifact.background is None:
            return None
        try:
            rows = np.array(msgspec.json.decode(artifact.background)["rows"], dtype=np.float32)
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            rows = None
        if rows is None or rows.ndim != 2 or rows.shape[1] != self.input_width or not len(rows):
            reason = f"expected {{'rows': [[{self.input_width} numbers], ...]}} in model.onnx's input encoding"
            raise ArtifactError(self.name, self.version, BACKGROUND_FILE, reason)
        return rows

    def check_explainable(self, rows: int) -> None:
        """A 422 naming `explain` unless this version can explain `rows` rows in one request; called before
        predicting, so that a refused request costs no inference."""
        if self.background is None:
            reason = f"version {self.version} has no {BACKGROUND_FILE} (built before explanations): retrain it"
            raise invalid([("explain", reason)], QUERY)
        if rows > EXPLAIN_LIMIT:
            reason = f"at most {EXPLAIN_LIMIT} instances can be explained in one request, got {rows}"
            raise invalid([("explain", reason)], QUERY)

    def explain_plan(self, matrix: np.ndarray, outputs: np.ndarray, decisions: np.ndarray) -> ExplainPlan:
        """The rows to run (once) to explain these answered rows, and how to turn the outputs into one
        explanation per row."""
        self.check_explainable(len(matrix))
        return self._explain_plan(matrix, outputs, decisions)

    def _explain_plan(self, matrix: np.ndarray, outputs: np.ndarray, decisions: np.ndarray) -> ExplainPlan:
        raise invalid([("explain", f"model {self.name!r} gives no explanations")], QUERY)

    def explained(self, answer: msgspec.Struct, explanations: list[msgspec.Struct]) -> msgspec.Struct:
        """The answer (single or batch) with each row's explanation added, as the model's `explained_types`
        (the response, batch row and batch answer, each with an `explanation` field)."""
        if self.explained_types is None:
            raise invalid([("explain", f"model {self.name!r} gives no explanations")], QUERY)
        one, batch_row, batch = self.explained_types
        if isinstance(answer, self.batch_response):
            rows = [
                batch_row(**msgspec.structs.asdict(row), explanation=explanation)
                for row, explanation in zip(answer.predictions, explanations, strict=True)  # type: ignore[attr-defined]
            ]
            return batch(predictions=rows, version=answer.version, threshold=answer.threshold)  # type: ignore[attr-defined]
        return one(**msgspec.structs.asdict(answer), explanation=explanations[0])

    def explanation_output(self) -> TensorOutput | None:
        """The output tensor that the Open Inference Protocol's request parameter `explain: true` adds to
        the model's outputs (`contributions`), or None for a model that gives no explanations."""
        return None

    def explanation_tensor(self, explanations: list[Any]) -> tuple[list[int], list[float]]:
        """The explanations as one output tensor (the Open Inference Protocol's `contributions`): shape, values."""
        raise invalid([("explain", f"model {self.name!r} gives no explanations")], QUERY)

    # ---- tensors (the Open Inference Protocol) -------------------------------------------------

    @abstractmethod
    def tensor_matrix(self, tensors: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """Decoded input tensors (float64 with NaN for null, or object arrays for BYTES), each already
        checked against its TensorInput's datatypes and shapes, → the float32 matrix; a ServiceError
        (status 400) names the input, row and value that the model cannot take."""

    def tensor_row(self, values: list[Any]) -> list[Any] | None:
        """One row's input values (a scalar, unchecked, or None, per input in `tensor_inputs`' order) → the
        row `predict_one` takes, when the model plainly accepts every value; None to leave the request to
        `tensor_matrix`, which decides and words any refusal. This default always leaves it."""
        return None

    @abstractmethod
    def output_tensors(
        self, outputs: np.ndarray, decisions: np.ndarray
    ) -> dict[str, Callable[[], tuple[list[int], list[Any] | np.ndarray]]]:
        """Each output tensor by name as a builder of (shape, flat values): only those asked for are built.
        The values may be a flat numpy array (binary outputs are then its bytes, without a Python list)."""
