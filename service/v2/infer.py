"""One inference request end to end: JSON bytes → envelope → parameters → matrix → predictor → JSON bytes.

The matrix goes through the predictor's `predict_matrix`, the call /predict/<model>/batch makes, so the
numbers are the same and the model metrics (labels, probabilities, inference time, batch rows, missing
fields) count V2 requests too. Binary tensor data (Triton's extension) is not supported: an input
that carries it is refused; an output asked for in binary is answered as JSON, which clients read the
same way (an output without `binary_data_size` is JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import msgspec
import numpy as np

from service.v2 import digits, heart
from service.v2.errors import bad_request
from service.v2.schemas import InferenceResponse, Parameters, ResponseOutput, WireRequest

MODELS: dict[str, ModuleType] = {"heart": heart, "digits": digits}
# Flags clients send for Triton's binary extension; answering JSON instead is what they can read.
_BINARY_OUTPUT_FLAGS = {"binary_data_output", "binary_data"}
_decode_request = msgspec.json.Decoder(WireRequest).decode
_encode = msgspec.json.Encoder().encode


def _envelope(body: bytes) -> WireRequest:
    try:
        return _decode_request(body)
    except msgspec.ValidationError as error:
        raise bad_request(f"the inference request does not fit the protocol: {str(error)[:200]}", "schema") from None
    except msgspec.DecodeError as error:
        raise bad_request(f"the body is not valid JSON: {error}", "malformed_json") from None


def _threshold(parameters: Parameters | None, accepts_threshold: bool, model: str) -> float | None:
    threshold = None
    for key, value in (parameters or {}).items():
        if key in _BINARY_OUTPUT_FLAGS:
            continue
        if key != "threshold":
            raise bad_request(f"unknown request parameter {key[:64]!r}", "unknown_field")
        if not accepts_threshold:
            raise bad_request(f"parameter 'threshold': the {model} model has no decision threshold", "query")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise bad_request(
                f"parameter 'threshold': {repr(value)[:64]} is not a number strictly between 0 and 1", "query"
            )
        threshold = float(value)
    return threshold


def _check_input_parameters(request: WireRequest) -> None:
    for tensor in request.inputs:
        for key in tensor.parameters or {}:
            if key == "binary_data_size":
                raise bad_request(
                    f"input {tensor.name!r}: binary tensor data are not supported; send `data` as JSON", "schema"
                )
            raise bad_request(f"input {tensor.name!r}: unknown parameter {key[:64]!r}", "unknown_field")


def _requested(request: WireRequest, known: list[str]) -> list[str]:
    """The outputs to return, in the order asked (default: all, in the metadata's order)."""
    if request.outputs is None:
        return known
    names: list[str] = []
    for output in request.outputs:
        if output.name not in known:
            raise bad_request(
                f"unknown output {output.name[:64]!r}: the model gives {', '.join(known)}", "unknown_field"
            )
        for key in output.parameters or {}:
            if key not in _BINARY_OUTPUT_FLAGS:
                raise bad_request(f"output {output.name!r}: unknown parameter {key[:64]!r}", "unknown_field")
        if output.name not in names:
            names.append(output.name)
    return names


def infer(model: str, predictor: Any, body: bytes, max_batch: int) -> bytes:
    """The response's JSON for one request to `model` (raises V2Error for anything the model cannot take)."""
    spec = MODELS[model]
    request = _envelope(body)
    threshold = _threshold(request.parameters, spec.ACCEPTS_THRESHOLD, model)
    _check_input_parameters(request)
    names = _requested(request, [output.name for output in spec.OUTPUTS])
    matrix: np.ndarray = spec.to_matrix(request.inputs, max_batch)
    built: dict[str, Callable[[], ResponseOutput]] = spec.outputs(predictor, matrix, threshold)
    response = InferenceResponse(
        model_name=model,
        model_version=predictor.version,
        outputs=[built[name]() for name in names],
        id=request.id,
    )
    return _encode(response)
