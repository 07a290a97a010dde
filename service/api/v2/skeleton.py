"""A V2 single row read by its body's learned skeleton: what a client sends again but for its values.

Why: a client sends the same envelope every time (the same names, datatypes, shapes, key order and
spacing), only the inputs' values change. Decoding 13 input objects (msgspec, ~5 µs), walking them
(one_row, ~5 µs) and counting the body's keys (~3 µs) is the same work on the same structure each time.
So once the single path (service.api.v2.single) has taken a body, its skeleton is kept: the body cut at
each input's value (`"data":[` VALUE `]`), with what that request asked (threshold, outputs). A later body
whose pieces between the values are byte for byte the same is that request with other values: only the
values are decoded (one msgspec call over the values joined as one JSON array) and checked, each with its
input's types and then the model's `tensor_row`, exactly as one_row would.

Why that is the same reading: a value is cut at the first `]` after `"data":[` (a nested one's `[` is
checked and dropped), and taken only when the values joined by commas hold no other comma and decode
to exactly one element per value: then each element is its own cut's value (a comma inside a string, or
a string across cuts, would make fewer). A scalar put where another scalar was leaves the JSON valid
and its structure (every key, so no repeated one) unchanged. Anything else declines, and the body goes
the usual way, which decides. Bodies with an `id` are not learned nor looked up (an id usually changes
with every request), and at most LIMIT skeletons are kept per model (then no more are learned: memory
stays bounded whatever clients send).

Binary single rows (Triton's binary extension, as tritonclient.http sends by default) are simpler still:
every name, datatype, shape, byte count and parameter is in the JSON header, so a header byte for byte
equal to one the general path took as a plain single row parses the same. Its layout (`RawSkeleton`: where
each value's bytes lie after the header) is kept, and a later body with that header and as many bytes after
it has each value read as RawInput.one reads it, then the model's `tensor_row`. At 32 in flight this took
a binary single from 172 to 85 µs of CPU in-process (`python -m bench.ab --cost`, 1.77×; `/predict/heart`
~55 µs in the same run).

A gRPC single row with `raw_input_contents` (tritonclient.grpc's default) is read the same way: its
header is the message's bytes before the raw contents (service.api.grpc.tensors.raw_parts), its values
the contents joined.
"""

from __future__ import annotations

import struct
from math import isnan
from typing import Any

import msgspec

from service.api.v2.raw import ELEMENT_CODES, NUMERIC_DTYPES, RawInput, one_element
from service.api.v2.single import MAX_BYTES, ScalarRequest, nan_as_none, row_plan

LIMIT = 64
_MARKERS = (b'"data":[', b'"data": [')  # compact, and as Python's json.dumps spaces it (tritonclient)
_ID = b'"id"'  # a body with this key (or these bytes anywhere) is not learned, so it is not looked up either
_values = msgspec.json.Decoder(list[int | float | str | None]).decode  # as ScalarInput's data


class Skeleton:
    """One learned body: per value (in the body's order) its column, its types (None allowed) and whether
    it is nested ([[v]]); whether they fill every column in order; what the request asked."""

    __slots__ = ("columns", "in_order", "nested", "request", "types")

    def __init__(self, slots: list[tuple[int, tuple[type, ...], bool]], width: int, request: Any) -> None:
        self.columns = [column for column, _, _ in slots]
        self.types = [(*types, type(None)) for _, types, _ in slots]
        self.nested = [index for index, (_, _, nested) in enumerate(slots) if nested]
        self.in_order = self.columns == list(range(width))
        self.request = request  # (threshold, names) as the single path read them


# Per model (its tensor_inputs, by identity as single._PLANS): skeleton key → Skeleton.
_LEARNED: dict[int, tuple[Any, dict[tuple[bytes, ...], Skeleton]]] = {}


def _cut(body: bytes) -> tuple[tuple[bytes, ...], list[bytes]] | None:
    """The body's key (the marker and the pieces between the values) and its values' bytes."""
    for marker in _MARKERS:
        parts = body.split(marker)
        if len(parts) > 1:
            break
    else:
        return None
    key = [marker, parts[0]]
    values = []
    for part in parts[1:]:
        value, found, rest = part.partition(b"]")
        if not found:
            return None
        values.append(value)
        key.append(rest)
    return tuple(key), values


def _per_model(store: dict[int, tuple[Any, dict[Any, Any]]], specs: tuple[Any, ...]) -> dict[Any, Any]:
    """The model's learned skeletons in `store`, by the identity of its `tensor_inputs` (as single._PLANS)."""
    known = store.get(id(specs))
    if known is None or known[0] is not specs:
        known = store[id(specs)] = (specs, {})
    return known[1]


def _learned(specs: tuple[Any, ...]) -> dict[tuple[bytes, ...], Skeleton]:
    return _per_model(_LEARNED, specs)


def read(model: Any, body: bytes) -> tuple[Any, list[Any]] | None:
    """(what the request asked, the row for `predict_one`) when the body fits a learned skeleton and
    its values are plainly taken; else None."""
    learned = _learned(model.tensor_inputs)
    if not learned or len(body) > MAX_BYTES or _ID in body:  # no skeleton has an id: skip the cut (~3 µs)
        return None
    cut = _cut(body)
    if cut is None or (skeleton := learned.get(cut[0])) is None:
        return None
    values = cut[1]
    for index in skeleton.nested:  # `[v` (the `]]` is in the key): v
        value = values[index]
        if value[:1] != b"[":
            return None
        values[index] = value[1:]
    joined = b",".join(values)
    # No comma in any value, and then one element per value: each element is its own cut's value (a comma
    # inside a string, or a string across cuts, would make fewer).
    if joined.count(b",") != len(values) - 1:
        return None
    try:
        scalars = _values(b"[" + joined + b"]")
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if len(scalars) != len(values) or not all(map(isinstance, scalars, skeleton.types)):
        return None
    if skeleton.in_order:
        row = model.tensor_row(scalars)
    else:
        by_column: list[Any] = [None] * len(model.tensor_inputs)
        for column, scalar in zip(skeleton.columns, scalars, strict=True):
            by_column[column] = scalar
        row = model.tensor_row(by_column)
    return None if row is None else (skeleton.request, row)


def learn(model: Any, body: bytes, request: ScalarRequest, asked: Any) -> None:
    """Keep the skeleton of a body the single path took (`asked`: what it read of the envelope), when
    every value is one cut and reads back as the request's value."""
    learned = _learned(model.tensor_inputs)
    if len(learned) >= LIMIT or len(body) > MAX_BYTES or _ID in body:
        return
    cut = _cut(body)
    if cut is None or len(cut[1]) != len(request.inputs):
        return
    plan = row_plan(model.tensor_inputs)[0]
    slots = []
    for tensor, value in zip(request.inputs, cut[1], strict=True):
        entry = plan.get((tensor.name, tensor.datatype, tensor.shape))
        if entry is None:
            return
        column, _, types, _ = entry
        nested = type(tensor.data[0]) is list
        try:
            read_back = msgspec.json.decode(value[1:] if nested else value)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return
        if read_back != (tensor.data[0][0] if nested else tensor.data[0]):
            return
        slots.append((column, types, nested))
    learned[cut[0]] = Skeleton(slots, len(model.tensor_inputs), asked)


class RawSkeleton:
    """One learned binary single row (Triton's binary extension, or gRPC raw contents), made from each
    value's column, datatype and where its bytes lie after the header: the struct that reads every number
    and their columns, where each text lies, each value's and all the values' bytes, what the request
    asked. Its key is the header itself, byte for byte."""

    __slots__ = ("number_columns", "numbers", "request", "size", "sizes", "texts")

    def __init__(self, slots: list[tuple[int, str, int, int]], size: int, request: Any) -> None:
        self.size, self.request = size, request
        self.sizes = tuple(end - start for _, _, start, end in slots)  # each value's bytes, in order
        # Every number read by one struct (the texts' bytes skipped), then each text: the 13 heart values
        # took 7.9 µs one at a time (one_element each) and 2.9 µs so (timeit, least of 7 interleaved rounds).
        layout, at = ["<"], 0
        self.number_columns, self.texts = [], []
        for column, datatype, start, end in slots:
            if start > at:
                layout.append(f"{start - at}x")
            if datatype in ELEMENT_CODES and NUMERIC_DTYPES[datatype].itemsize == end - start:
                layout.append(ELEMENT_CODES[datatype])
                self.number_columns.append(column)
            else:  # a text (BYTES), read as one_element reads it
                layout.append(f"{end - start}x")
                self.texts.append((column, datatype, start, end))
            at = end
        self.numbers = struct.Struct("".join(layout))


# Per protocol, then per model as _LEARNED: header → RawSkeleton. The header is the JSON header (REST) or
# the message's bytes before its raw contents (gRPC, service.api.grpc.tensors.raw_parts); one store per
# protocol, so that one protocol's header can never be taken for the other's.
_LEARNED_RAW: dict[str, dict[int, tuple[Any, dict[bytes, RawSkeleton]]]] = {"rest": {}, "grpc": {}}


def _learned_raw(specs: tuple[Any, ...], protocol: str = "rest") -> dict[bytes, RawSkeleton]:
    return _per_model(_LEARNED_RAW[protocol], specs)


def read_raw(
    model: Any, header: bytes | memoryview, data: memoryview, protocol: str = "rest", sizes: Any = None
) -> tuple[Any, list[Any]] | None:
    """(what the request asked, the row) when the header is one the general path took as a plain
    binary single row before: the same header parses the same (every name, datatype, shape, size and
    parameter is in it), so only the bytes after it are read, each value as RawInput.one reads it, then
    the model's `tensor_row`. None otherwise (the general path decides, and words any refusal).
    `sizes`: each value's byte count as the request framed it, where the header does not say it (gRPC's
    raw contents): they must be the learned ones."""
    learned = _learned_raw(model.tensor_inputs, protocol)
    if not learned or len(header) > MAX_BYTES:
        return None
    skeleton = learned.get(bytes(header))
    if skeleton is None or len(data) != skeleton.size or (sizes is not None and sizes != skeleton.sizes):
        return None
    values: list[Any] = [None] * len(model.tensor_inputs)
    numbers = map(float, skeleton.numbers.unpack_from(data))  # floats, as one_element gives every number
    for column, number in zip(skeleton.number_columns, numbers, strict=True):
        values[column] = None if isnan(number) else number  # missing, as nan_as_none reads NaN
    for column, datatype, start, end in skeleton.texts:
        plain, value = one_element(datatype, data[start:end])
        if not plain:
            return None
        values[column] = nan_as_none(value)
    row = model.tensor_row(values)
    return None if row is None else (skeleton.request, row)


def learn_raw(model: Any, header: bytes, inputs: list[Any], asked: Any, protocol: str = "rest") -> None:
    """Keep the layout of a binary single row the general path took plainly (`inputs` as it cut them:
    all raw, one value each; `asked` what it read of the envelope). Bounded as the JSON skeletons are."""
    learned = _learned_raw(model.tensor_inputs, protocol)
    if len(learned) >= LIMIT or len(header) > MAX_BYTES or _ID in header:
        return
    plan = row_plan(model.tensor_inputs)[0]
    slots, offset = [], 0
    for tensor in inputs:
        entry = plan.get((tensor.name, tensor.datatype, tuple(tensor.shape)))
        if type(tensor) is not RawInput or entry is None:
            return
        slots.append((entry[0], tensor.datatype, offset, offset + len(tensor.raw)))
        offset += len(tensor.raw)
    learned[header] = RawSkeleton(slots, offset, asked)
