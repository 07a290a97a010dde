"""BYTES elements read through the learned-vocabulary shortcut (service.api.v2.raw._Vocabulary) are exactly
what the element-by-element parse reads, and every refusal is the parse's, whatever came before."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api.v2 import raw
from service.errors import ServiceError

# Categories, the empty text, non-ASCII, one over the vocabulary's element bound, near-misses, three zero
# bytes inside a text (a false start for the guess), two texts with one key (length, first 4, last 3 bytes)
TEXTS = st.sampled_from(
    ["normal", "fixed", "reversible", "", "é", "x" * 70, "fixe", "normalx", "a\x00\x00\x00b", "abcdXefg", "abcdYefg"]
)


def framed(texts: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)


def outcome(name: str, data: bytes, count: int, reader) -> tuple[str, object]:
    try:
        return "ok", list(reader(name, data, count))
    except ServiceError as error:
        return "refused", (error.status, error.message)


def parse_only(name: str, data: bytes, count: int) -> list[str]:
    return raw._parse_strings(name, data, count)[1]


@settings(max_examples=300, deadline=None)
@given(
    history=st.lists(st.lists(TEXTS, max_size=12), max_size=4),
    texts=st.lists(TEXTS, max_size=12),
    cut=st.integers(-3, 3),
    count_change=st.integers(-1, 1),
    garbage=st.binary(max_size=6),
)
def test_shortcut_reads_what_the_parse_reads(history, texts, cut, count_change, garbage) -> None:
    name = f"input-{len(raw._VOCABULARIES) % 200}"
    for earlier in history:  # what the vocabulary learned from
        raw._strings(name, framed(earlier), len(earlier))
    data = framed(texts) + garbage
    data = data[: len(data) + cut] if cut < 0 else data + b"\x00" * cut
    count = max(0, len(texts) + count_change)
    assert outcome(name, data, count, raw._strings) == outcome(name, data, count, parse_only)


def test_a_lying_length_inside_known_elements_is_still_refused() -> None:
    raw._strings("thal-lie", framed(["fixed", "normal"] * 3), 6)
    assert raw._VOCABULARIES["thal-lie"].framed  # learned: the shortcut is in play
    # Element 1 claims 11 bytes: the rest happens to hold known elements, which must not hide it.
    data = framed(["fixed"]) + struct.pack("<I", 11) + framed(["normal"])[1:] + framed(["fixed"])
    with pytest.raises(ServiceError) as refused:
        raw._strings("thal-lie", data, 3)
    assert refused.value.status == 400 and "thal-lie" in refused.value.message


def test_the_vocabulary_is_bounded() -> None:
    for start in range(0, 200, 10):
        texts = [f"value-{i}" for i in range(start, start + 10)]
        assert list(raw._strings("many", framed(texts), 10)) == texts
    assert len(raw._VOCABULARIES["many"].texts) <= raw._Vocabulary.MAX_ELEMENTS


def test_known_elements_are_split_by_the_shortcut() -> None:
    """The shortcut is taken (not only correct when it is): once learned, a tensor of known elements, of
    lengths 1 to 64, is split without the loop. (An empty text, four zero bytes framed, makes the guess
    see a start too many: such tensors take the loop.)"""
    texts = ["normal", "fixed", "reversible", "é", "y" * 64, "a\x00b"]
    raw._strings("known", framed(texts), len(texts))
    data = framed(texts * 100)
    split = raw._VOCABULARIES["known"].split(data, len(texts) * 100)
    assert split is not None and split.tolist() == texts * 100
    assert raw._VOCABULARIES["known"].split(data, len(texts) * 100 - 1) is None  # the count is checked
