"""One inference request end to end: body → envelope → tensors → the model's matrix → data plane → answer.

The envelope, the tensors' datatypes and shapes are the protocol's, checked here against the model's
declared inputs (`Model.tensor_inputs`); the values are the model's to judge (`Model.tensor_matrix`).
The matrix goes through the data plane's `predict_matrix`, the call /predict/<route>/batch makes, so
the numbers are the same and the model metrics count V2 requests too. `predict` is the part every wire
form shares (REST JSON, REST binary, gRPC): named tensors in, output values out.

Binary tensor data (Triton's extension): with `Inference-Header-Content-Length: H` the first H bytes
are the JSON and the rest are the inputs that carry `parameters.binary_data_size`, in input order
(service.api.v2.raw decodes them). Outputs are binary when asked (`binary_data_output` on the request,
`binary_data` on a requested output); the answer then carries the header too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import numpy as np

from service.api.repeated_keys import refuse_repeated_keys
from service.api.v2 import skeleton
from service.api.v2.errors import bad_request
from service.api.v2.raw import BINARY_SIZE, binary_inputs, encode
from service.api.v2.schemas import (
    NO_DATA,
    BinaryOutput,
    InferenceResponse,
    Parameters,
    ResponseOutput,
    WireOutput,
    WireRequest,
)
from service.api.v2.single import ScalarRequest, plain_row, scalar_request
from service.api.v2.tensors import Tensor, batch_size, by_name, check_shape, decode
from service.contract import is_threshold_override
from service.dataplane import Served
from service.errors import ServiceError
from service.models.tensors import Categorical

# Flags clients send for Triton's binary extension: whether outputs are sent as raw bytes.
_BINARY_OUTPUT_FLAGS = {"binary_data_output", "binary_data"}
_decode_request = msgspec.json.Decoder(WireRequest).decode
_encode = msgspec.json.Encoder().encode
# name → (datatype, shape, flat values: a list, an array, or a Categorical of texts)
Outputs = dict[str, tuple[str, list[int], list[Any] | np.ndarray | Categorical]]
# The output that request parameter `explain: true` adds (heart: [N, features] Shapley values in the inputs'
# order; digits: [N, 8, 8] occlusion maps), as /predict's `?explain=true` explains the same rows.
CONTRIBUTIONS = "contributions"


def _envelope(body: bytes | memoryview) -> WireRequest:
    try:
        return _decode_request(body)
    except msgspec.ValidationError as error:
        refuse_repeated_keys(body, 0)  # in preference: the value the error would name is ambiguous
        raise bad_request(f"the inference request does not fit the protocol: {str(error)[:200]}", "schema") from None
    except msgspec.DecodeError as error:
        raise bad_request(f"the body is not valid JSON: {error}", "malformed_json") from None
    except RecursionError:  # msgspec's depth limit, in a parameter's value or an input's `data`: not a 500
        raise bad_request("the body is nested too deeply (more than about 1,000 levels)", "schema") from None


def _parameters_keys(parameters: Parameters | None) -> int:
    return 0 if parameters is None else 1 + len(parameters)  # "parameters" and its own keys (not deeper ones)


def envelope_keys(request: WireRequest | ScalarRequest) -> int:
    """The distinct keys the decoded envelope certainly came from (a lower bound: a field given as null
    counts as absent, keys nested inside a parameter's value are not counted), for refuse_repeated_keys."""
    keys = 1 + (request.id is not None) + _parameters_keys(request.parameters)  # 1: "inputs"
    for tensor in request.inputs:
        keys += 3 + (tensor.data is not NO_DATA) + _parameters_keys(tensor.parameters)  # name, shape, datatype
    if request.outputs is not None:
        keys += 1 + sum(1 + _parameters_keys(output.parameters) for output in request.outputs)
    return keys


def _flag(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"{where} {key!r}: {repr(value)[:64]} is not true or false", "schema")
    return value


def explain_of(parameters: Parameters | None) -> tuple[Parameters | None, bool]:
    """The request parameter `explain` (true: add the `contributions` output, the model's explanation of
    each row) taken out of the parameters; the rest go on to threshold_of."""
    if not parameters or "explain" not in parameters:
        return parameters, False
    rest = {key: value for key, value in parameters.items() if key != "explain"}
    return rest, _flag("parameter", "explain", parameters["explain"])


def threshold_of(parameters: Parameters | None, accepts_threshold: bool, model: str) -> tuple[float | None, bool]:
    """The request's threshold override (None: the model's) and whether it asks for binary outputs."""
    threshold, binary = None, False
    for key, value in (parameters or {}).items():
        if key in _BINARY_OUTPUT_FLAGS:
            binary = _flag("parameter", key, value)
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
    return threshold, binary


def requested(outputs: Sequence[WireOutput] | None, known: list[str], binary: bool) -> dict[str, bool]:
    """The outputs to return, in the order asked (default: all, in the metadata's order), each with
    whether it goes as raw bytes."""
    if outputs is None:
        return dict.fromkeys(known, binary)
    names: dict[str, bool] = {}
    for output in outputs:
        if output.name == CONTRIBUTIONS and output.name not in known:
            raise bad_request(f"output {CONTRIBUTIONS!r} is given only with the request parameter explain: true")
        if output.name not in known:
            raise bad_request(
                f"unknown output {output.name[:64]!r}: the model gives {', '.join(known)}", "unknown_field"
            )
        as_binary = binary
        for key, value in (output.parameters or {}).items():
            if key not in _BINARY_OUTPUT_FLAGS:
                raise bad_request(f"output {output.name!r}: unknown parameter {key[:64]!r}", "unknown_field")
            as_binary = _flag(f"output {output.name!r}: parameter", key, value)
        names.setdefault(output.name, as_binary)
    return names


def input_arrays(model: Any, inputs: Sequence[Tensor], max_batch: int) -> tuple[dict[str, np.ndarray], int]:
    """The inputs by name, each checked against the model's declared datatypes and shapes and decoded
    (float64 with NaN for null, or objects for BYTES), and the batch size they agree on."""
    specs = {spec.name: spec for spec in model.tensor_inputs}
    required = [spec.name for spec in model.tensor_inputs if spec.required]
    tensors = by_name(inputs, list(specs), required)
    rows = {name: check_shape(tensor, specs[name].tails) for name, tensor in tensors.items()}
    size = batch_size(tensors, rows, max_batch)
    return {name: decode(tensor, specs[name].datatypes) for name, tensor in tensors.items()}, size


async def predict(
    served: Served,
    inputs: Sequence[Tensor],
    threshold: float | None,
    names: Sequence[str],
    max_batch: int,
    *,
    explain: bool = False,
) -> Outputs:
    """What every wire form shares: the named input tensors through the model and the data plane, and
    the output tensors asked for (raises ServiceError for anything the model cannot take).

    A single row joins the micro-batch of concurrent single rows (`predict_one`, as /predict singles
    do: one ONNX call for all of them), given as /predict gives it (None where missing, so that the
    missing-value counts are the same): read without numpy where it plainly can be (service.api.v2.single),
    else from the matrix. More rows are one `predict_matrix` call."""
    model = served.model
    row = None if explain else plain_row(model, inputs)
    if row is not None:
        return await predict_row(served, row, threshold, names)
    datatypes = {output.name: output.datatype for output in model.tensor_outputs}
    arrays, rows = input_arrays(model, inputs, max_batch)
    matrix = model.tensor_matrix(arrays, rows)
    if explain:  # refused before any inference
        model.check_explainable(rows)
    threshold = model.threshold if threshold is None else threshold
    if rows == 1:
        row = [None if math.isnan(value) else value for value in matrix[0].tolist()]
        output, decision = await served.predict_one(row, threshold)
        outputs, decisions = np.asarray(output)[None], np.array([decision])
    else:
        outputs, decisions = served.predict_matrix(matrix, threshold)
    built = model.output_tensors(outputs, decisions)
    if explain:  # the model's explanation of each row, from one onnxruntime call (Served.explain)
        explanations = await served.explain(matrix, outputs, decisions)
        built[CONTRIBUTIONS] = lambda: model.explanation_tensor(explanations)
        datatypes[CONTRIBUTIONS] = "FP64"
    return {name: (datatypes[name], *built[name]()) for name in names}


async def predict_row(served: Served, row: list[Any], threshold: float | None, names: Sequence[str]) -> Outputs:
    """One row's output tensors: it joins the micro-batch of concurrent single rows."""
    output, decision = await served.predict_one(row, served.model.threshold if threshold is None else threshold)
    return row_outputs(served.model, output, decision, names)


def row_outputs(model: Any, output: Any, decision: int, names: Iterable[str]) -> Outputs:
    """The output tensors asked for of one row's output and decision, in the order asked (as `predict`)."""
    built = model.row_output_tensors(output, decision)
    return {name: built[name] for name in names}


def _plain(
    name: str, served: Served, body: bytes | memoryview
) -> tuple[str | None, float | None, dict[str, bool], list[Any]] | None:
    """(id, threshold, outputs, row) of a body plainly one row (v2.skeleton, v2.single); None: the general path."""
    model = served.model
    if (known := skeleton.read(model, body)) is not None:
        (threshold, names), row = known
        return None, threshold, names, row
    if (request := scalar_request(body)) is None:
        return None
    try:
        refuse_repeated_keys(body, envelope_keys(request))
        parameters, explain = explain_of(request.parameters)
        threshold, binary = threshold_of(parameters, model.overridable_threshold, name)
        names = requested(request.outputs, [output.name for output in model.tensor_outputs], binary)
    except ServiceError:
        return None
    if explain or (row := plain_row(model, request.inputs)) is None:
        return None
    skeleton.learn(model, body, request, (threshold, names))
    return request.id, threshold, names, row


async def infer(
    name: str, served: Served, body: bytes, max_batch: int, header_length: int | None = None
) -> tuple[bytes, int | None]:
    """The response body for one REST request, and its JSON header's length if it carries binary
    outputs (raises ServiceError for anything the model cannot take)."""
    model = served.model
    view = memoryview(body)
    if header_length is None or header_length == len(body):
        plain = _plain(name, served, body)
    elif known := skeleton.read_raw(model, view[:header_length], view[header_length:]):
        (threshold, names), row = known  # a binary single row whose JSON header was taken before
        plain = None, threshold, names, row
    else:
        plain = None
    if plain is not None:
        request_id, threshold, names, row = plain  # awaited here, not in predict_row: one coroutine frame less
        output, decision = await served.predict_one(row, model.threshold if threshold is None else threshold)
        return _response(name, served, request_id, names, row_outputs(model, output, decision, names))
    header = body if header_length is None else view[:header_length]
    wire = _envelope(header)
    refuse_repeated_keys(header, envelope_keys(wire))
    parameters, explain = explain_of(wire.parameters)
    threshold, binary = threshold_of(parameters, model.overridable_threshold, name)
    inputs = binary_inputs(wire, None if header_length is None else view[header_length:])
    known = [output.name for output in model.tensor_outputs] + ([CONTRIBUTIONS] if explain else [])
    names = requested(wire.outputs, known, binary)
    if header_length is not None and not (explain or wire.id) and (row := plain_row(model, inputs)) is not None:
        skeleton.learn_raw(model, bytes(header), inputs, (threshold, names))  # then as `predict` does a plain row
        values = await predict_row(served, row, threshold, list(names))
    else:
        values = await predict(served, inputs, threshold, list(names), max_batch, explain=explain)
    return _response(name, served, wire.id, names, values)


def _response(
    name: str, served: Served, request_id: str | None, names: dict[str, bool], values: Outputs
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON part when binary outputs follow it."""
    tensors: list[Any] = []
    raw: list[bytes] = []
    for output, as_binary in names.items():
        datatype, shape, data = values[output]
        if as_binary:
            raw.append(encode(datatype, data))
            tensors.append(BinaryOutput(output, shape, datatype, {BINARY_SIZE: len(raw[-1])}))
        else:
            data = data if isinstance(data, list) else data.tolist()  # JSON: msgspec encodes lists
            tensors.append(ResponseOutput(name=output, shape=shape, datatype=datatype, data=data))
    response = _encode(InferenceResponse(model_name=name, model_version=served.version, outputs=tensors, id=request_id))
    if not raw:
        return response, None
    return b"".join([response, *raw]), len(response)
