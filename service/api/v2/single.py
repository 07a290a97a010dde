"""One row read without numpy: a single heart patient's 13 inputs → the row `predict_one` takes.

Why: the general path (service.api.v2.tensors, then the model's `tensor_matrix`) decodes each input's
`data` on its own and makes a numpy array of it, then checks the columns with numpy. That scales to
1000-row batches, but for one row numpy's fixed costs dominate: for one heart row (13 inputs) the
per-input decodes and arrays took ~57 µs and the column checks ~53 µs (timeit, quiet machine), of a V2
single that cost ~450 µs of CPU at 32 in flight against ~75 µs for a `/predict/heart` single. Here a small
JSON body is decoded once, with every `data` typed as one JSON scalar (`ScalarRequest`), and the values are
checked one by one in Python (`one_row` the protocol's part, the model's `tensor_row` the values'). With
the direct route (service.asgi), a V2 single at 32 in flight costs ~155 µs (`python -m bench.ab --cost`:
6,512 requests per CPU-second against 2,199 before, /predict/heart single 14,179). A body this path took
is learned (service.api.v2.skeleton): the same body again but for its values skips the decode below.

It only ever accepts. Anything it does not plainly take (a name, datatype, shape, nesting or value that
is not right, a tensor parameter, an explanation, anything unknown) makes it decline, and the general
path decides and words the refusal, so every message has one source; tests/v2/test_single.py checks
that the two agree on every row the single path takes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from service.api.v2.schemas import Parameters, WireOutput
from service.errors import ServiceError

MAX_BYTES = 4096  # a body larger than this is not tried here (one heart row: ~800 bytes), so no batch is decoded twice
Scalar = int | float | str | None
One = Annotated[list[Scalar], Meta(min_length=1, max_length=1)]


class ScalarInput(Struct, forbid_unknown_fields=True, gc=False):
    """An input holding one value: `data` [v] or [[v]] (a batch, or deeper nesting, does not decode here).
    The shape is a tuple, so that (name, datatype, shape) is a key. Not tracked by the garbage collector
    (it holds no cycle), which makes the 13 of a request cheaper to make."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    data: Annotated[list[Scalar | One], Meta(min_length=1, max_length=1)]
    parameters: Parameters | None = None


class ScalarRequest(Struct, forbid_unknown_fields=True, gc=False):
    """The protocol's inference request (service.api.v2.schemas.WireRequest) with its inputs' data decoded."""

    inputs: list[ScalarInput]
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[WireOutput] | None = None


_decode = msgspec.json.Decoder(ScalarRequest).decode
# The Python types of a JSON value each datatype takes (as service.api.v2.tensors' decoders: a number is
# not a string, an INT64 is not 2.0; null is always allowed). Datatypes not listed are left to the general path.
_TYPES: dict[str, tuple[type, ...]] = {"FP32": (int, float), "FP64": (int, float), "INT64": (int,), "BYTES": (str,)}
# (name, datatype, shape) of an input holding one value → its column (its place in the model's
# `tensor_inputs`), that column's bit, the types its value may have, and whether its data may be nested
# ([[v]], for a two-dimensional shape); per model (its `tensor_inputs`, one tuple per Model class), with
# the bits of the required columns and the number of columns.
Plan = dict[tuple[str, str, tuple[int, ...]], tuple[int, int, tuple[type, ...], bool]]
_PLANS: dict[int, tuple[Any, Plan, int, int]] = {}


def scalar_request(body: bytes | memoryview) -> ScalarRequest | None:
    """The request, if the body is small and decodes with one value per input and no tensor parameter."""
    if len(body) > MAX_BYTES:
        return None
    try:
        request = _decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    for tensor in request.inputs:
        if tensor.parameters is not None:
            return None
    return request


def row_plan(specs: tuple[Any, ...]) -> tuple[Plan, int, int]:
    """What one_row accepts of the model's inputs (TensorInput), cached by identity: hashing 13 dataclasses
    per request (an lru_cache's key) cost more than the rest of the lookup."""
    known = _PLANS.get(id(specs))
    if known is None or known[0] is not specs:
        plan: Plan = {}
        for column, spec in enumerate(specs):
            for tail in spec.tails:
                if math.prod(tail) == 1:  # [1], [1, 1], ...: one value per row
                    for datatype in spec.datatypes:
                        if datatype in _TYPES:
                            entry = (column, 1 << column, _TYPES[datatype], len(tail) == 1)
                            plan[(spec.name, datatype, (1, *tail))] = entry
        required = sum(1 << column for column, spec in enumerate(specs) if spec.required)
        known = _PLANS[id(specs)] = (specs, plan, required, len(specs))
    return known[1], known[2], known[3]


def one_row(specs: tuple[Any, ...], inputs: Sequence[Any]) -> list[Any] | None:
    """Each input's one value in the order of `specs` (None for null, NaN or an input left out) when the
    request is plainly one row of the model's one-value inputs (see the module's docstring): each known,
    given once, of an accepted datatype and a one-row shape, its value of that datatype's type, every
    required one given; otherwise None. Positional, not by name: the model's `tensor_row` then walks its
    columns in step with the list (a dict cost ~3 µs of the ~10 the two took per heart row)."""
    plan, required, width = row_plan(specs)
    values: list[Any] = [None] * width
    given = 0  # a bit per column given, so that a repeated input is seen
    for tensor in inputs:
        shape = tensor.shape
        accepted = plan.get((tensor.name, tensor.datatype, shape if type(shape) is tuple else tuple(shape)))
        if accepted is None:
            return None
        column, bit, types, nested = accepted
        if given & bit:
            return None
        given |= bit
        if type(tensor) is ScalarInput:
            value = tensor.data[0]
            if type(value) is list:  # [[v]]: numpy takes data flat or as deep as the shape
                if not nested:
                    return None
                value = value[0]
            if value is not None and not isinstance(value, types):
                return None
        else:
            value = _raw_value(tensor)
            if value is _DECLINE:
                return None
        values[column] = value
    return values if given & required == required else None


_DECLINE = object()


def _raw_value(tensor: Any) -> Any:
    """The one value of a tensor whose values came as raw bytes or typed contents (sized against its
    shape by its `one()` or `values()`); None for NaN (missing, as the general path counts it); _DECLINE if
    not one value or not such a tensor (JSON data not decoded here: service.api.v2.schemas.WireInput)."""
    one = getattr(tensor, "one", None)
    if one is not None:  # raw bytes (service.api.v2.raw.RawInput)
        plain, value = one()
        if not plain:
            return _DECLINE
    elif (values := getattr(tensor, "values", None)) is not None:  # typed contents (gRPC)
        try:
            (value,) = values().tolist()
        except (ServiceError, ValueError):
            return _DECLINE
    else:
        return _DECLINE
    return nan_as_none(value)


def nan_as_none(value: Any) -> Any:
    """None for NaN: a raw or typed number's way to say missing, counted as the general path counts it."""
    return None if isinstance(value, float) and math.isnan(value) else value


def plain_row(model: Any, inputs: Sequence[Any]) -> list[Any] | None:
    """The row for `predict_one` when both the protocol (one_row) and the model (`tensor_row`) plainly
    take the inputs; None leaves the request to the general path."""
    values = one_row(model.tensor_inputs, inputs)
    return None if values is None else model.tensor_row(values)
