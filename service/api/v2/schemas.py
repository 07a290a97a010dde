"""The Open Inference Protocol's REST bodies as msgspec Structs.

Requests are decoded in two steps: the envelope here, with each tensor's `data` kept as raw JSON
(`msgspec.Raw`), then `data` alone with the element type its `datatype` calls for (service.api.v2.tensors),
so that a number where a string belongs, or a bool where a number belongs, is refused by msgspec in C
instead of by a loop over the values. `InferenceRequest` is the same body for OpenAPI only (it
shows `data` as an array, which Raw cannot).
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Raw, Struct

# Parameter values are JSON scalars (the protocol's `$parameters`).
Parameters = dict[str, Any]


NO_DATA = Raw()  # `data` left out: the tensor's bytes follow the JSON (binary extension), or it is a 400


class WireInput(Struct, forbid_unknown_fields=True):
    name: str
    shape: list[int]
    datatype: str
    data: Raw = NO_DATA
    parameters: Parameters | None = None


class WireOutput(Struct, forbid_unknown_fields=True):
    name: str
    parameters: Parameters | None = None


class WireRequest(Struct, forbid_unknown_fields=True):
    inputs: list[WireInput]
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[WireOutput] | None = None


class InputTensor(Struct, forbid_unknown_fields=True):
    """One input tensor: `data` flat or nested, row-major, with as many values as `shape` says."""

    name: Annotated[str, Meta(description="the input's name, e.g. `age` or `pixels`")]
    shape: Annotated[list[int], Meta(description="e.g. [N, 1] for a heart feature, [N, 64] for pixels")]
    datatype: Annotated[str, Meta(description="FP32, FP64, INT64 or BYTES, as the model's metadata allows")]
    data: Annotated[list[Any], Meta(description="the values, flat or nested; null marks a missing heart value")]
    parameters: Parameters | None = None


class RequestedOutput(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(description="an output of the model's metadata")]
    parameters: Parameters | None = None


class InferenceRequest(Struct, forbid_unknown_fields=True):
    """An inference request: `outputs` picks the outputs returned (default: all of them)."""

    inputs: list[InputTensor]
    id: Annotated[str | None, Meta(description="echoed in the response")] = None
    parameters: Annotated[
        Parameters | None, Meta(description="heart: `threshold` (strictly between 0 and 1) overrides the decision")
    ] = None
    outputs: list[RequestedOutput] | None = None


class ResponseOutput(Struct):
    name: str
    shape: list[int]
    datatype: str
    data: Annotated[list[Any], Meta(description="the values, flat, row-major")]


class BinaryOutput(Struct):
    """An output whose values follow the JSON as raw bytes (Triton's binary extension)."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, int]


class InferenceResponse(Struct, omit_defaults=True):
    model_name: str
    model_version: str
    outputs: list[ResponseOutput]
    id: Annotated[str | None, Meta(description="the request's id, when it had one")] = None


class TensorMetadata(Struct):
    name: str
    datatype: str
    shape: Annotated[list[int], Meta(description="-1 for the batch dimension")]


class ModelMetadata(Struct, omit_defaults=True):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    properties: Annotated[
        dict[str, str] | None,
        Meta(
            description="the request parameters the model takes beyond its tensors, each with what it does "
            "(`explain`: the output it adds); the Open Inference Protocol's optional model properties"
        ),
    ] = None


class ServerMetadata(Struct):
    name: str
    version: str
    extensions: list[str]


class V2ErrorBody(Struct):
    error: Annotated[str, Meta(description="what is wrong, naming the input, the value and the row")]
