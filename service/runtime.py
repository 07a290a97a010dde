"""One onnxruntime session per model per worker process, checked against what the service will feed it.

One intra-op and one inter-op thread: each uvicorn worker is single-threaded anyway, and on two cores
the default thread pool made batch-1000 inference twice as slow (FIELD-NOTES). Scale with workers.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from service.artifact import Artifact, ArtifactError
from service.contract import ONNX_FILE

FLOAT_TENSOR = "tensor(float)"
_shared_arena_lock = threading.Lock()


@functools.cache
def _register_shared_arena() -> None:
    """Once per process (called under the lock): the CPU arena every session allocates from."""
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, -1, -1, -1))  # the default arena settings


def _use_shared_arena(options: ort.SessionOptions) -> None:
    """Every session of this process allocates from one CPU arena instead of each growing its own.
    With an arena per session, each hot reload under traffic grew a new arena while the old one's
    memory stayed with the process: a 5-minute soak (59 reloads) saw a worker's RSS climb from 105 to
    175-185 MB; with the shared arena it levels off at about 120 MB (bench/README.md, *Soak*)."""
    with _shared_arena_lock:
        _register_shared_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")


class ModelMismatchError(ValueError):
    """The ONNX graph's inputs or outputs are not what the service produces or expects."""


def _is_dynamic(dim: object) -> bool:
    """A batch dimension exported as dynamic shows up as a symbolic name or None (never a fixed int)."""
    return not isinstance(dim, int) or dim < 0


class OnnxModel:
    """A loaded ONNX graph with one float32 matrix in and one float32 tensor out."""

    def __init__(
        self,
        onnx_bytes: bytes,
        *,
        input_name: str,
        input_width: int,
        output_name: str,
        output_shape: Sequence[int],
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings from the optimiser are noise in the service's logs
        _use_shared_arena(options)
        try:
            self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unparsable graphs
            raise ModelMismatchError(f"onnxruntime cannot load the graph: {error}") from None
        self.input_name = input_name
        self.output_name = output_name
        self.input_width = input_width
        self._check(input_name, input_width, output_name, list(output_shape))
        self._outputs = [output_name]

    def _check(self, input_name: str, input_width: int, output_name: str, output_shape: list[int]) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [input_name]:
            raise ModelMismatchError(f"graph inputs are {[i.name for i in inputs]}, expected [{input_name!r}]")
        (tensor,) = inputs
        if tensor.type != FLOAT_TENSOR:
            raise ModelMismatchError(f"input {input_name!r} is {tensor.type}, expected {FLOAT_TENSOR}")
        if len(tensor.shape) != 2 or not _is_dynamic(tensor.shape[0]) or tensor.shape[1] != input_width:
            raise ModelMismatchError(f"input {input_name!r} has shape {tensor.shape}, expected [batch, {input_width}]")
        names = [o.name for o in outputs]
        if output_name not in names:
            raise ModelMismatchError(f"graph outputs are {names}, expected {output_name!r} among them")
        out = outputs[names.index(output_name)]
        if out.type != FLOAT_TENSOR:
            raise ModelMismatchError(f"output {output_name!r} is {out.type}, expected {FLOAT_TENSOR}")
        fixed = [d if isinstance(d, int) and d >= 0 else -1 for d in out.shape]
        if len(fixed) != len(output_shape) or not _is_dynamic(out.shape[0]) or fixed[1:] != output_shape[1:]:
            raise ModelMismatchError(f"output {output_name!r} has shape {out.shape}, expected {output_shape}")

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Run the graph on a (rows, width) float32 matrix; one call for the whole batch."""
        return self.session.run(self._outputs, {self.input_name: matrix})[0]


def open_artifact_model(
    artifact: Artifact, *, input_name: str, input_width: int, output_name: str, output_shape: Sequence[int]
) -> OnnxModel:
    """The artifact's ONNX model, checked against the tensors the service feeds and reads; a
    mismatch refuses the version with an ArtifactError naming model.onnx."""
    try:
        return OnnxModel(
            artifact.onnx_bytes,
            input_name=input_name,
            input_width=input_width,
            output_name=output_name,
            output_shape=output_shape,
        )
    except ModelMismatchError as error:
        raise ArtifactError(artifact.name, artifact.version, ONNX_FILE, str(error)) from None
