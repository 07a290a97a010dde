"""gRPC tensors ↔ the REST adapter's: `raw_input_contents` become service.api.v2.raw.RawInput (the same
byte format as the binary extension), typed `contents` a `ContentsInput`; outputs go back the way the
inputs came (raw if the request sent raw, else typed contents), as Triton answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from service.api.grpc import inference_pb2 as pb
from service.api.v2.errors import bad_request
from service.api.v2.raw import RawInput, encode
from service.api.v2.schemas import WireOutput

# Which `InferTensorContents` field holds each datatype's values (the protocol's table).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


# raw_input_contents is field 7, length-delimited: each entry is framed by this tag and its length (a varint)
_RAW_CONTENTS_TAG = b"\x3a"
_SHORT_HEADS = [_RAW_CONTENTS_TAG + bytes((length,)) for length in range(0x80)]


def _framed(content: bytes) -> bytes:
    """One raw_input_contents entry as protobuf writes it: the tag, the length as a varint, the bytes."""
    if len(content) < 0x80:  # a one-byte varint: a single row's values
        return _SHORT_HEADS[len(content)] + content
    length, varint = len(content), bytearray()
    while length > 0x7F:
        varint.append(0x80 | (length & 0x7F))
        length >>= 7
    varint.append(length)
    return _RAW_CONTENTS_TAG + bytes(varint) + content


def raw_parts(message: bytes, request: pb.ModelInferRequest) -> tuple[bytes, bytes, tuple[int, ...]] | None:
    """(the message's bytes before its raw contents, the contents joined, each one's size) when the message (`request`
    parsed) ends with every raw_input_contents entry, in order, as protobuf writes them (tritonclient's
    messages do: fields in number order, the raw contents last); else None.

    Why: the part before is what a client sends again for every row of the same form (model, inputs'
    names, datatypes and shapes, parameters, outputs), so service.api.v2.skeleton keys a learned single
    row on it, as on a binary REST request's JSON header. Learning also checks that this part parses on
    its own, without raw contents (`is_plain_header`): a message that is such a part followed by raw
    contents entries then parses as that part's fields plus those entries, whatever the entries hold."""
    contents = request.raw_input_contents
    if not contents:
        return None
    tail = b"".join(map(_framed, contents))
    if len(tail) >= len(message) or not message.endswith(tail):
        return None
    return message[: len(message) - len(tail)], b"".join(contents), tuple(map(len, contents))


def is_plain_header(header: bytes) -> bool:
    """Whether `header` is whole fields of a ModelInferRequest (it parses alone) and none of them raw
    contents: the condition for keying learned rows on it (raw_parts)."""
    try:
        return not pb.ModelInferRequest.FromString(header).raw_input_contents
    except DecodeError:
        return False


@dataclass(slots=True)
class ContentsInput:
    """An input tensor whose values came in the typed `contents` of its datatype."""

    name: str
    shape: list[int]
    datatype: str
    contents: Any  # the repeated field

    def values(self) -> np.ndarray:
        count = math.prod(self.shape)
        if len(self.contents) != count:
            raise bad_request(
                f"input {self.name!r}: contents hold {len(self.contents)} values, but shape {self.shape} needs {count}",
                "size",
            )
        if self.datatype == "BYTES":
            values = np.empty(count, dtype=object)
            for index, value in enumerate(self.contents):
                try:
                    values[index] = value.decode()
                except UnicodeDecodeError:
                    raise bad_request(
                        f"input {self.name!r}: BYTES element {index} is not UTF-8 text", "datatype"
                    ) from None
            return values
        return np.array(self.contents, dtype=np.float64)


def parameters(entries: Any) -> dict[str, Any]:
    """A protobuf parameters map as plain values (bool, int, str or float)."""
    found = {}
    for key, parameter in entries.items():
        choice = parameter.WhichOneof("parameter_choice")
        found[key] = None if choice is None else getattr(parameter, choice)
    return found


def inputs(request: pb.ModelInferRequest) -> list[Any]:
    """The request's input tensors; raw contents, when given, one per input and in input order."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise bad_request(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs (one per input)", "size"
        )
    tensors: list[Any] = []
    for index, tensor in enumerate(request.inputs):
        for key in tensor.parameters:
            raise bad_request(f"input {tensor.name[:64]!r}: unknown parameter {key[:64]!r}", "unknown_field")
        shape = list(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise bad_request(f"input {tensor.name[:64]!r}: both contents and raw_input_contents")
            tensors.append(RawInput(tensor.name, shape, tensor.datatype, raw[index]))
            continue
        field = CONTENTS_FIELD.get(tensor.datatype)
        contents = getattr(tensor.contents, field) if field is not None else []
        tensors.append(ContentsInput(tensor.name, shape, tensor.datatype, contents))
    return tensors


def requested_outputs(request: pb.ModelInferRequest) -> list[WireOutput] | None:
    if not request.outputs:
        return None
    return [WireOutput(output.name, parameters(output.parameters) or None) for output in request.outputs]


def response(
    request: pb.ModelInferRequest, model: str, version: str, outputs: dict[str, tuple[str, list[int], list[Any]]]
) -> pb.ModelInferResponse:
    """The answer: raw output contents if the request sent raw inputs, typed contents otherwise."""
    answer = pb.ModelInferResponse(model_name=model, model_version=version, id=request.id)
    as_raw = bool(request.raw_input_contents)
    for name, (datatype, shape, values) in outputs.items():
        tensor = answer.outputs.add(name=name, datatype=datatype, shape=shape)
        if as_raw:
            answer.raw_output_contents.append(encode(datatype, values))
            continue
        data = values if isinstance(values, list) else values.tolist()  # protobuf takes Python values
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend(str(value).encode() for value in data)
        else:
            getattr(tensor.contents, CONTENTS_FIELD[datatype]).extend(data)
    return answer
