"""Raw tensor bytes ↔ numpy: the one element format that Triton's binary extension (REST) and the gRPC
protocol's `raw_input_contents` / `raw_output_contents` share.

Numbers are little-endian in the datatype's width; a BYTES element is a 4-byte little-endian length and
then that many bytes. A tensor's byte count is checked against its shape and datatype before any byte is
read as a value (the shape was already checked against the model's, so `prod(shape)` is bounded), and
every BYTES length against what is left: a short, long or lying tensor is a 400 naming the input.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.api.v2.errors import bad_request

# Little-endian element types of the numeric datatypes the protocol defines.
NUMERIC_DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_LENGTH = struct.Struct("<I")
# One element of each numeric datatype, for RawInput.one (a single row: struct is ~10× cheaper than numpy there).
_ELEMENT = {datatype: struct.Struct("<" + dtype.char) for datatype, dtype in NUMERIC_DTYPES.items()}


@dataclass(slots=True)
class RawInput:
    """An input tensor whose values came as raw bytes (binary extension, or gRPC raw contents)."""

    name: str
    shape: list[int]
    datatype: str
    raw: bytes | memoryview

    def values(self) -> np.ndarray:
        """float64 (numbers) or an object array of str (BYTES), flat; a 400 if the bytes do not fit."""
        count = math.prod(self.shape)
        if self.datatype == "BYTES":
            return _strings(self.name, self.raw, count)
        dtype = NUMERIC_DTYPES[self.datatype]
        expected = count * dtype.itemsize
        if len(self.raw) != expected:
            raise bad_request(
                f"input {self.name!r}: {len(self.raw)} bytes of {self.datatype} data, but shape {self.shape} "
                f"needs {expected}",
                "size",
            )
        return np.frombuffer(self.raw, dtype=dtype).astype(np.float64)

    def one(self) -> tuple[bool, Any]:
        """(True, the value) when the tensor is exactly one well-formed element (a float for numbers, NaN
        included; a str for BYTES), else (False, None): values() then finds what is wrong."""
        raw = self.raw
        if self.datatype == "BYTES":
            if len(raw) < 4 or _LENGTH.unpack_from(raw)[0] != len(raw) - 4:
                return False, None
            try:
                return True, bytes(raw[4:]).decode()
            except UnicodeDecodeError:
                return False, None
        element = _ELEMENT.get(self.datatype)
        if element is None or len(raw) != element.size:
            return False, None
        return True, float(element.unpack(raw)[0])


class _Vocabulary:
    """The framed elements (length + bytes) an input's BYTES tensors held before, to split the next one in C.

    Why: BYTES inputs of a model are mostly categories (heart's `thal`), so the same few elements repeat,
    and the element-by-element loop of `_strings` was the largest part of a 1000-row binary or gRPC
    request (about 0.3 ms of it). A regular expression that matches any known framed element finds them
    all in one `findall`. It is only a shortcut, never a judge: the split is taken when the matches tile
    the data exactly (their lengths add up to the data's, so no byte was skipped) and there are `count`
    of them. Tiling from offset 0 is then the true parse: the element at each tile's start has the length
    its first 4 bytes say, and that is the tile's own prefix. Anything else (a new value, a lying length)
    goes through the loop, which words every refusal; new short values are learned, up to a bound, so a
    client cannot grow it without limit.
    """

    MAX_ELEMENTS = 64
    MAX_ELEMENT_BYTES = 64

    __slots__ = ("pattern", "texts")

    def __init__(self) -> None:
        self.texts: dict[bytes, str] = {}  # framed element → its text
        self.pattern: re.Pattern[bytes] | None = None

    def split(self, data: bytes, count: int) -> list[str] | None:
        if self.pattern is None:
            return None
        framed = self.pattern.findall(data)
        if len(framed) != count or sum(map(len, framed)) != len(data):
            return None
        return list(map(self.texts.__getitem__, framed))

    def learn(self, texts: dict[bytes, str]) -> None:
        """Add the elements a loop parse decoded (element bytes → text) while there is room."""
        room = self.MAX_ELEMENTS - len(self.texts)
        new = {
            _LENGTH.pack(len(element)) + element: text
            for element, text in texts.items()
            if len(element) <= self.MAX_ELEMENT_BYTES and _LENGTH.pack(len(element)) + element not in self.texts
        }
        if not new or room < len(new):
            return
        self.texts.update(new)
        # Two framed elements never both match at one offset (different lengths differ in the prefix),
        # so the order of the alternatives does not matter.
        self.pattern = re.compile(b"|".join(map(re.escape, self.texts)))


_VOCABULARIES: dict[str, _Vocabulary] = {}
_MAX_VOCABULARIES = 256  # input names; past that, new names are parsed by the loop only


def _strings(name: str, raw: bytes | memoryview, count: int) -> np.ndarray:
    """The elements as str; each length checked against what is left (see _Vocabulary for the shortcut)."""
    data = bytes(raw)
    vocabulary = _VOCABULARIES.get(name)
    if vocabulary is None and len(_VOCABULARIES) < _MAX_VOCABULARIES:
        vocabulary = _VOCABULARIES[name] = _Vocabulary()
    values = vocabulary.split(data, count) if vocabulary is not None else None
    if values is None:
        texts, values = _parse_strings(name, data, count)
        if vocabulary is not None:
            vocabulary.learn(texts)
    array = np.empty(count, dtype=object)
    array[:] = values
    return array


def _parse_strings(name: str, data: bytes, count: int) -> tuple[dict[bytes, str], list[str]]:
    """The element-by-element parse: (distinct element bytes → text, the texts in order). Why the loop
    looks like this: slicing bytes and decoding through a small cache (categories repeat) took a 1000-row
    `thal` from about 1.5 ms (memoryview slices, one str() each, stored into an object array) to ~0.3 ms."""
    size = len(data)
    unpack = _LENGTH.unpack_from
    texts: dict[bytes, str] = {}
    values: list[str] = []
    append = values.append
    offset = 0
    for index in range(count):
        if offset + 4 > size:
            raise bad_request(f"input {name!r}: the BYTES data end before element {index} of {count}", "size")
        (length,) = unpack(data, offset)
        offset += 4
        end = offset + length
        if end > size:
            raise bad_request(
                f"input {name!r}: BYTES element {index} claims {length} bytes, {size - offset} are left", "size"
            )
        element = data[offset:end]
        text = texts.get(element)
        if text is None:
            try:
                text = texts[element] = element.decode()
            except UnicodeDecodeError:
                raise bad_request(f"input {name!r}: BYTES element {index} is not UTF-8 text", "datatype") from None
        append(text)
        offset = end
    if offset != size:
        raise bad_request(f"input {name!r}: {size - offset} bytes left over after {count} BYTES elements", "size")
    return texts, values


class _Framed(dict[Any, bytes]):
    """Value → its BYTES element (length, then the bytes), made once per distinct value: outputs such as
    labels repeat, so `map(framed.__getitem__, values)` stays in C after the first of each (a 1000-row
    label output: ~1.2 ms as a loop of pack + append, ~0.05 ms so)."""

    def __missing__(self, value: Any) -> bytes:
        data = value if isinstance(value, bytes) else str(value).encode()
        framed = self[value] = _LENGTH.pack(len(data)) + data
        return framed


def encode(datatype: str, values: list[Any]) -> bytes:
    """An output tensor's flat values as raw bytes."""
    if datatype == "BYTES":
        return b"".join(map(_Framed().__getitem__, values))
    return np.asarray(values, dtype=NUMERIC_DTYPES[datatype]).tobytes()
