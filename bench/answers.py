"""Reading a V2 answer's `probability` column, from REST JSON or a gRPC ModelInferResponse, so two servers'
answers to the same bytes can be compared before anything is timed (bench.mlserver).

Why compare values and not only shapes: a runtime that mis-maps a column still answers 1000 rows, fast; and
h2load counts a gRPC error as success (it ends in a trailer, with HTTP 200), so the one checked call before
timing is what proves the timed calls are answered. A gRPC answer may carry its outputs raw
(`raw_output_contents`, as both servers answer a raw request) or in typed `contents`: both are read.
"""

from __future__ import annotations

import json

import numpy as np

from service.api.grpc import inference_pb2 as pb

OUTPUT = "probability"
_RAW_DTYPES = {"FP32": "<f4", "FP64": "<f8"}
_CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents"}


class AnswerError(ValueError):
    """An answer without a readable probability column of the expected length."""


def json_probabilities(body: bytes, output: str = OUTPUT) -> np.ndarray:
    """The named output's values from a V2 JSON answer."""
    try:
        outputs = json.loads(body)["outputs"]
        found = next(o for o in outputs if o.get("name") == output)
    except (ValueError, KeyError, TypeError, StopIteration):
        raise AnswerError(f"no output {output!r} in the JSON answer: {body[:300]!r}") from None
    return np.asarray(found["data"], dtype=np.float64).reshape(-1)


def grpc_probabilities(message: bytes, output: str = OUTPUT) -> np.ndarray:
    """The named output's values from a serialized ModelInferResponse (raw or typed contents)."""
    answer = pb.ModelInferResponse.FromString(message)
    for index, tensor in enumerate(answer.outputs):
        if tensor.name != output:
            continue
        if tensor.datatype not in _RAW_DTYPES:
            raise AnswerError(f"output {output!r} is {tensor.datatype}, not FP32 or FP64")
        if answer.raw_output_contents:
            values = np.frombuffer(answer.raw_output_contents[index], dtype=_RAW_DTYPES[tensor.datatype])
        else:
            values = np.asarray(getattr(tensor.contents, _CONTENTS[tensor.datatype]))
        return values.astype(np.float64).reshape(-1)
    raise AnswerError(f"no output {output!r} in the gRPC answer: {[o.name for o in answer.outputs]}")


def grpc_answer(port: int, method: str, frame: bytes, timeout_s: float = 10.0) -> bytes:
    """One unary call with the frame's message as it is (bytes in, bytes out); raises AnswerError with the
    gRPC status on failure."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method)
        try:
            return bytes(call(frame[5:], timeout=timeout_s, wait_for_ready=True))  # frame: flag, 4-byte length, message
        except grpc.RpcError as error:
            raise AnswerError(f"{error.code()}: {error.details()}") from None


def same_answers(answers: dict[str, np.ndarray], rows: int, tolerance: float = 1e-5) -> None:
    """Every side gave `rows` probabilities in [0, 1], and the sides agree to `tolerance` (both run the same
    model.onnx in float32; one side may widen to FP64)."""
    for side, values in answers.items():
        if values.shape != (rows,) or not np.all((values >= 0) & (values <= 1)):
            raise AnswerError(f"{side}: expected {rows} probabilities in [0, 1], got shape {values.shape}")
    if not answers:
        return
    first, *others = answers.items()
    for side, values in others:
        gap = float(np.max(np.abs(values - first[1]))) if rows else 0.0
        if gap > tolerance:
            raise AnswerError(f"{side} and {first[0]} differ by up to {gap:.3g} in probability")
