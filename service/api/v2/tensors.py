"""One input tensor's `data` → a numpy array of its declared shape, or a 400 naming the input.

`data` is decoded with the element type its `datatype` calls for (numbers for FP32/FP64, integers for
INT64, strings for BYTES; `null` allowed, nested up to three levels), so msgspec refuses a wrong
element in C; numpy then finds ragged nesting and the shape. Flat data of the right length is
reshaped (the protocol allows flat or nested, row-major). The value checks that follow are numpy
comparisons over whole columns; Python touches a value only to quote the first offending one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import numpy as np

from service.api.v2.errors import bad_request
from service.api.v2.schemas import NO_DATA, WireInput

_Number = float | None
_Integer = int | None
_Text = str | None
_DECODERS = {
    "FP32": msgspec.json.Decoder(list[_Number | list[_Number | list[_Number]]]),
    "FP64": msgspec.json.Decoder(list[_Number | list[_Number | list[_Number]]]),
    "INT64": msgspec.json.Decoder(list[_Integer | list[_Integer | list[_Integer]]]),
    "BYTES": msgspec.json.Decoder(list[_Text | list[_Text | list[_Text]]]),
}


def _msgspec_reason(error: msgspec.DecodeError) -> str:
    """`Expected `int`, got `float` - at `$[3]`` → `expected `int`, got `float` at data[3]`."""
    text = str(error)
    reason, _, where = text.partition(" - at `$")
    return f"{reason[:1].lower()}{reason[1:]}" + (f" at data{where.rstrip('`')}" if where else "")


def check_shape(tensor: Tensor, tails: Sequence[tuple[int, ...]]) -> int:
    """The batch size of a shape [N, *tail] for one of the allowed tails ([N] is the empty tail)."""
    shape = tensor.shape
    if shape and shape[0] >= 0 and tuple(shape[1:]) in tails:
        return shape[0]
    given = str(shape) if len(shape) <= 8 else f"{str(shape[:8])[:-1]}, ...]"  # quoted from the request: bounded
    if any(size < 0 for size in shape):
        raise bad_request(f"input {tensor.name!r}: shape {given} has a negative dimension", "size")
    forms = " or ".join("[" + ", ".join(["N", *map(str, tail)]) + "]" for tail in tails)
    raise bad_request(f"input {tensor.name!r}: shape {given} is not {forms}", "size")


class Tensor(Protocol):
    """An input tensor of any wire form: JSON (`WireInput`) or one whose `values()` decode it flat
    (service.api.v2.raw.RawInput; gRPC's typed contents)."""

    name: str
    shape: list[int]
    datatype: str


def decode(tensor: Any, datatypes: Sequence[str]) -> np.ndarray:
    """The tensor's values as a float64 array (NaN for null) or, for BYTES, an object array (None for
    null), in the tensor's declared shape."""
    if tensor.datatype not in datatypes:
        accepted = ", ".join(datatypes)
        raise bad_request(
            f"input {tensor.name!r}: datatype {tensor.datatype!r} is not accepted (use {accepted})", "datatype"
        )
    if not isinstance(tensor, WireInput):  # raw bytes or typed contents: flat, sized against the shape
        return _shaped(tensor.name, tensor.values(), tuple(tensor.shape))
    if tensor.data is NO_DATA:
        raise bad_request(f"input {tensor.name!r} has no `data` (nor `parameters.binary_data_size`)", "schema")
    try:
        values = _DECODERS[tensor.datatype].decode(tensor.data)
    except msgspec.DecodeError as error:
        reason = _msgspec_reason(error)
        raise bad_request(
            f"input {tensor.name!r}: data do not fit datatype {tensor.datatype}: {reason}", "datatype"
        ) from None
    try:
        array = np.array(values, dtype=object if tensor.datatype == "BYTES" else np.float64)
    except ValueError:  # numpy: "inhomogeneous shape"
        raise bad_request(f"input {tensor.name!r}: nested data are ragged (lists of unequal lengths)", "size") from None
    return _shaped(tensor.name, array, tuple(tensor.shape))


def _shaped(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.shape == shape:
        return array
    expected = math.prod(shape)
    if array.ndim == 1 and array.size == expected:
        return array.reshape(shape)
    nested = f" nested as {list(array.shape)}" if array.ndim > 1 else ""
    raise bad_request(
        f"input {name!r}: data hold {array.size} values{nested}, but shape {list(shape)} needs {expected}",
        "size",
    )


def by_name(inputs: Sequence[Tensor], known: Sequence[str], required: Sequence[str]) -> dict[str, Tensor]:
    """The inputs by name: each known, none twice, every required one present."""
    found: dict[str, Tensor] = {}
    for tensor in inputs:
        if tensor.name not in known:
            expected = ", ".join(known)
            raise bad_request(f"unknown input {tensor.name[:64]!r}: the model takes {expected}", "unknown_field")
        if tensor.name in found:
            raise bad_request(f"input {tensor.name!r} is given twice", "unknown_field")
        found[tensor.name] = tensor
    absent = [name for name in required if name not in found]
    if absent:
        raise bad_request(f"missing input {', '.join(map(repr, absent))}: it cannot be missing", "missing_required")
    return found


def batch_size(tensors: dict[str, Tensor], rows: dict[str, int], max_batch: int) -> int:
    """The one batch size every input agrees on, 1..max_batch."""
    sizes = set(rows.values())
    if len(sizes) > 1:
        detail = ", ".join(f"{name} {rows[name]}" for name in tensors)
        raise bad_request(f"inputs disagree on the number of rows (first dimension): {detail}", "size")
    (size,) = sizes
    if not 1 <= size <= max_batch:
        raise bad_request(f"the batch has {size} rows; send 1 to {max_batch} (SERVICE_MAX_BATCH)", "size")
    return size
