"""One inference request end to end: JSON bytes → envelope → tensors → the model's matrix → data plane → JSON.

The envelope, the tensors' datatypes and shapes are the protocol's, checked here against the model's
declared inputs (`Model.tensor_inputs`); the values are the model's to judge (`Model.tensor_matrix`).
The matrix goes through the data plane's `predict_matrix`, the call /predict/<route>/batch makes, so
the numbers are the same and the model metrics count V2 requests too.

Binary tensor data (Triton's extension) is not supported: an input that carries it is refused; an
output asked for in binary is answered as JSON, which clients read the same way (an output without
`binary_data_size` is JSON).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from service.api.v2.errors import bad_request
from service.api.v2.schemas import InferenceResponse, Parameters, ResponseOutput, WireInput, WireRequest
from service.api.v2.tensors import batch_size, by_name, check_shape, decode
from service.contract import is_threshold_override
from service.dataplane import Served

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
        if isinstance(value, bool) or not isinstance(value, int | float) or not is_threshold_override(value):
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


def input_arrays(model: Any, inputs: list[WireInput], max_batch: int) -> tuple[dict[str, np.ndarray], int]:
    """The inputs by name, each checked against the model's declared datatypes and shapes and decoded
    (float64 with NaN for null, or objects for BYTES), and the batch size they agree on."""
    specs = {spec.name: spec for spec in model.tensor_inputs}
    required = [spec.name for spec in model.tensor_inputs if spec.required]
    tensors = by_name(inputs, list(specs), required)
    rows = {name: check_shape(tensor, specs[name].tails) for name, tensor in tensors.items()}
    size = batch_size(tensors, rows, max_batch)
    return {name: decode(tensor, specs[name].datatypes) for name, tensor in tensors.items()}, size


def infer(name: str, served: Served, body: bytes, max_batch: int) -> bytes:
    """The response's JSON for one request (raises ServiceError for anything the model cannot take)."""
    model = served.model
    request = _envelope(body)
    threshold = _threshold(request.parameters, model.overridable_threshold, name)
    _check_input_parameters(request)
    datatypes = {output.name: output.datatype for output in model.tensor_outputs}
    names = _requested(request, list(datatypes))
    arrays, rows = input_arrays(model, request.inputs, max_batch)
    matrix = model.tensor_matrix(arrays, rows)
    outputs, decisions = served.predict_matrix(matrix, model.threshold if threshold is None else threshold)
    built = model.output_tensors(outputs, decisions)
    response = InferenceResponse(
        model_name=name,
        model_version=served.version,
        outputs=[_output(output, datatypes[output], *built[output]()) for output in names],
        id=request.id,
    )
    return _encode(response)


def _output(name: str, datatype: str, shape: list[int], data: list[Any]) -> ResponseOutput:
    return ResponseOutput(name=name, shape=shape, datatype=datatype, data=data)
