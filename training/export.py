"""Export a trained network to one self-contained ONNX file and prove it agrees with torch."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from training.models import WithProbabilities

PARITY_TOLERANCE = 1e-5
OPSET = 18


class ExportParityError(RuntimeError):
    """onnxruntime and torch disagree on some row by more than the tolerance."""


def export_onnx(model: nn.Module, example: np.ndarray, path: Path, input_name: str, output_name: str) -> Path:
    """Write `model` (logits) as raw features → probabilities, batch dimension dynamic, weights inline."""
    wrapped = WithProbabilities(model).eval()
    # Export with at least two rows: a batch of one lets the exporter specialise the batch dimension.
    sample = torch.as_tensor(np.asarray(example[:2], dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            wrapped,
            (sample,),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    program.save(str(path), external_data=False)
    _drop_stack_traces(path)
    onnx.checker.check_model(str(path), full_check=True)
    return path


STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def _drop_stack_traces(path: Path) -> None:
    """Remove the exporter's per-node Python stack traces from the file.

    They hold absolute paths of the build machine (`File "/home/.../training/models.py", line 87`),
    so the same weights exported from two checkouts gave two different model.onnx checksums, and so
    two version names. They also tell whoever receives the artifact where it was built. The graph,
    the weights and the other node metadata (name scopes, module classes) are kept as they are.
    """
    model = onnx.load(str(path))
    graphs = [model.graph, *(function for function in model.functions)]
    for graph in graphs:
        for node in graph.node:
            kept = [prop for prop in node.metadata_props if prop.key != STACK_TRACE_KEY]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
    onnx.save(model, str(path))


def onnx_probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.asarray(x, dtype=np.float32)})[0]


@torch.no_grad()
def torch_probabilities(model: nn.Module, x: np.ndarray) -> np.ndarray:
    return WithProbabilities(model).eval()(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()


def check_parity(model: nn.Module, path: Path, x: np.ndarray, what: str) -> float:
    """The largest absolute difference between torch and onnxruntime on `x`; raises past 1e-5."""
    expected = torch_probabilities(model, x)
    actual = onnx_probabilities(path, x)
    if actual.shape != expected.shape:
        raise ExportParityError(f"{path}: output shape {actual.shape} != torch's {expected.shape} on {what}")
    worst = float(np.max(np.abs(actual - expected))) if len(x) else 0.0
    if not worst <= PARITY_TOLERANCE:
        row = int(np.unravel_index(np.argmax(np.abs(actual - expected)), actual.shape)[0])
        raise ExportParityError(
            f"{path}: onnxruntime differs from torch by {worst:.3g} (> {PARITY_TOLERANCE}) on {what} row {row}"
        )
    return worst
