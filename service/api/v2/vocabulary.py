"""BYTES tensors of repeating elements (categories such as heart's `thal`) split with a few numpy operations
instead of an element-by-element loop, when every element is one seen before: `Vocabulary`.

Why: splitting a 1000-element BYTES tensor was the largest part of a 1000-row binary or gRPC request.
1000 `thal` elements took 192–218 µs with a regular expression over the known elements, 100–122 µs with
one key per element and a byte-for-byte join of the elements it named, and ~50–60 µs so (timeit, same
runs; see `Vocabulary.split`). Texts of over 12 bytes (`thal`'s "reversable defect") had kept that join
until their inner words were compared instead: 134 → 109 µs for 1000 `thal` (timeit, interleaved, a
slower day).
"""

from __future__ import annotations

import struct

import numpy as np

from service.models.tensors import Categorical

_LENGTH = struct.Struct("<I")
_PAD = bytes(8)
# Per count of an element's own bytes in a word (0..8): the mask that keeps them (a word's low bytes come first).
_BYTE_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
# Per element length (0..255): the bits of the 8 bytes at an element's start that are its own (4 length
# bytes and up to 4 text bytes), and of the 8 bytes that end it (its last up to 8 bytes).
_HEAD_MASKS = np.array([(1 << (8 * min(4 + n, 8))) - 1 for n in range(256)], dtype=np.uint64)
_TAIL_MASKS = np.array([((1 << 64) - 1) ^ ((1 << (8 * (8 - min(4 + n, 8)))) - 1) for n in range(256)], dtype=np.uint64)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: mixes the tail word into the lookup key (collisions only cost speed)


def _words(padded: bytes, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head, tail, text length) of the elements framed at `starts` of `padded` (the data with 8 bytes of
    padding before and after; starts count from the data's first byte; each length below 256). The head is
    the element's first 8 bytes (its length and first 4 text bytes), the tail its last 8 bytes, each masked
    to the element's own bytes: together every byte of a text of up to 12 bytes. Unaligned overlapping
    views read 8 bytes at every offset in one gather each."""
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    heads = words[starts + 8]
    lengths = (heads & 0xFF).astype(np.intp)
    # ends at most the data's end + 255: a lying length runs into the padding or is clipped; the chain
    # check in split refuses it either way
    tails = words[np.minimum(starts + 4 + lengths, len(padded) - 8)]
    return heads & _HEAD_MASKS[lengths], tails & _TAIL_MASKS[lengths], lengths


def _inner_words(framed: bytes, count: int) -> list[int]:
    """The `count` words at 8, 16, … bytes into a framed element, as split reads them (little-endian), each
    holding only the element's own bytes (0 past its end)."""
    return [int.from_bytes(framed[offset : offset + 8], "little") for offset in range(8, 8 * (count + 1), 8)]


class Vocabulary:
    """The framed elements (length + bytes) an input's BYTES tensors held before.

    `split` guesses where the elements start: an element shorter than 256 bytes starts with its length
    byte and three zero bytes, so the offsets followed by three zeros are the guessed starts. The guess is
    only taken when it is provably the true parse:
    - the chain: the first guessed element starts at 0, each one starts where the one before ends (by its
      length) and the last ends at the data's end. Parsing is deterministic (each element's length says
      where the next begins), so the guessed starts are then exactly the parse's.
    - each element equals the known element its key finds: equal head and tail words, which hold every
      byte of a text of up to 12 bytes; a vocabulary with longer texts compares the words between them
      too (`inner`), so every byte of every element is compared.
    Anything else (a new value, a lying length, an empty element: its four zero bytes look like a start
    too) goes through the caller's loop, which words every refusal; new short values are learned when all
    of them fit under the bound, so a client cannot grow it without limit.
    """

    MAX_ELEMENTS = 64
    MAX_ELEMENT_BYTES = 64

    __slots__ = ("back", "codes", "framed", "heads", "inner", "keys", "tails", "texts")

    def __init__(self) -> None:
        self.framed: list[bytes] = []  # code → framed element
        self.texts = np.empty(0, dtype=object)  # code → its text
        self.heads = self.tails = np.empty(0, dtype=np.uint64)  # code → its words
        self.keys = np.empty(0, dtype=np.uint64)  # the elements' lookup keys, sorted
        self.codes = np.empty(0, dtype=np.intp)  # the code of each sorted key
        # Per word between head and tail (texts of over 12 bytes): its byte offset in an element, and per
        # code the mask of the element's own bytes in it and what those bytes are.
        self.inner: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.back = _PAD  # padding after the data: the words split reads past the last element's end

    def split(self, data: bytes, count: int) -> Categorical | None:
        """The `count` elements (as indices into the known texts), or None where the guess is not the parse."""
        size = len(data)
        if not self.framed or count == 0 or size < 4:
            return None
        zero = np.frombuffer(data, dtype=np.uint8) == 0
        starts = np.flatnonzero(zero[1 : size - 2] & zero[2 : size - 1] & zero[3:size])
        if starts.size != count or starts[0] != 0:
            return None
        padded = _PAD + data + self.back
        heads, tails, lengths = _words(padded, starts)
        ends = starts + 4 + lengths
        if ends[-1] != size or not np.array_equal(starts[1:], ends[:-1]):
            return None
        found = np.minimum(np.searchsorted(self.keys, heads ^ (tails * _MIX)), len(self.keys) - 1)  # nearest
        codes = self.codes[found]
        if not (np.array_equal(self.heads[codes], heads) and np.array_equal(self.tails[codes], tails)):
            return None
        if self.inner:
            # an element's length is its known element's (equal heads), so are the masks of its inner words:
            # 1 gather of the data's words, 2 of per-code arrays and 2 operations per word, instead of a
            # byte-for-byte join (1000 `thal` elements, one inner word: ~25 against ~58 µs, timeit)
            words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
            for offset, masks, expected in self.inner:
                if not np.array_equal(words[starts + (8 + offset)] & masks[codes], expected[codes]):
                    return None
        return Categorical(codes, self.texts)

    def learn(self, texts: dict[bytes, str]) -> None:
        """Add the elements a loop parse decoded (element bytes → text), when all new ones fit the bound."""
        new = {}
        for element, text in texts.items():
            framed = _LENGTH.pack(len(element)) + element
            if len(element) <= self.MAX_ELEMENT_BYTES and framed not in self.framed:
                new[framed] = text
        if not new or len(self.framed) + len(new) > self.MAX_ELEMENTS:
            return
        known = [*self.texts.tolist(), *new.values()]
        self.framed += new
        self.texts = np.empty(len(known), dtype=object)
        self.texts[:] = known
        # each element alone between paddings, read as split reads the data
        starts = np.cumsum([0] + [len(framed) + 16 for framed in self.framed[:-1]])
        padded = b"".join(_PAD + framed + _PAD for framed in self.framed)
        self.heads, self.tails, _ = _words(padded, starts)
        # the words the head and tail leave out: from framed byte 8 up to the longest element's last 8
        longest = max(len(framed) for framed in self.framed)
        count = max(0, -(-longest // 8) - 2)
        inner = np.array([_inner_words(framed, count) for framed in self.framed], dtype=np.uint64).reshape(
            len(self.framed), count
        )
        own = np.clip(np.array([len(framed) for framed in self.framed])[:, None] - 8 * np.arange(1, count + 1), 0, 8)
        masks = _BYTE_MASKS[own]
        self.inner = [(8 * (j + 1), masks[:, j].copy(), inner[:, j].copy()) for j in range(count)]
        # a word read at 8 × count bytes into the last element ends at most 8 × (count + 1) past its start
        self.back = bytes(8 * (count + 2))
        keys = self.heads ^ (self.tails * _MIX)
        self.codes = np.argsort(keys, kind="stable")
        self.keys = keys[self.codes]
