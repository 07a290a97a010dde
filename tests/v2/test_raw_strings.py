"""BYTES elements read through the learned-vocabulary shortcut (service.api.v2.vocabulary.Vocabulary) are exactly
what the element-by-element parse reads, and every refusal is the parse's, whatever came before."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api.v2 import raw
from service.api.v2.vocabulary import Vocabulary
from service.errors import ServiceError

# Categories, the empty text, non-ASCII, one over the vocabulary's element bound, near-misses, three zero
# bytes inside a text (a false start for the guess), texts that differ only in a middle byte: of 8 and 12
# bytes (within what an element's head and tail words hold) and of 15 (bytes 4-6 in neither word)
TEXTS = st.sampled_from(
    [
        "normal", "fixed", "reversible", "", "é", "x" * 70, "fixe", "normalx", "a\x00\x00\x00b",
        "abcdXefg", "abcdYefg", "abcdEFGH1234", "abcdEFGI1234", "abcdPQR12345678", "abcdSTU12345678",
        "m" * 20 + "X" + "m" * 19, "m" * 20 + "Y" + "m" * 19,
    ]
)  # fmt: skip


def framed(texts: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)


def outcome(name: str, data: bytes, count: int, reader) -> tuple[str, object]:
    try:
        return "ok", list(reader(name, data, count))
    except ServiceError as error:
        return "refused", (error.status, error.message)


def parse_only(name: str, data: bytes, count: int) -> list[str]:
    return raw._parse_strings(name, data, count)[1]


# (each way of spoiling the data below is left out half the time, so that the others meet clean data often)
@settings(max_examples=500, deadline=None)
@given(
    history=st.lists(st.lists(TEXTS, max_size=12), max_size=4),
    texts=st.lists(TEXTS, max_size=12),
    cut=st.just(0) | st.integers(-3, 3),
    count_change=st.just(0) | st.integers(-1, 1),
    garbage=st.just(b"") | st.binary(max_size=6),
    where=st.integers(0, 12),
    between=st.sampled_from([b"", b"\x00", b"zz", b"\x00\x00\x00", b"\x05\x00\x00\x00"]),
)
def test_shortcut_reads_what_the_parse_reads(history, texts, cut, count_change, garbage, where, between) -> None:
    name = f"input-{len(raw._VOCABULARIES) % 200}"
    for earlier in [*history, texts]:  # what the vocabulary learned from (the texts too, when all fit)
        raw._strings(name, framed(earlier), len(earlier))
    # known elements with bytes slipped in between two of them (or anywhere): a gap the guess must not skip
    elements = [framed([text]) for text in texts]
    at = min(where, len(elements))
    data = b"".join(elements[:at]) + between + b"".join(elements[at:]) + garbage
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


def test_bytes_between_known_elements_are_not_skipped() -> None:
    """Two known elements with bytes between them that hold no start: the guess finds both elements, but
    the parse reads the second length from those bytes, so the chain check must send it to the loop."""
    raw._strings("thal-gap", framed(["fixed", "normal"]), 2)
    with pytest.raises(ServiceError) as refused:
        raw._strings("thal-gap", framed(["fixed"]) + b"zz" + framed(["normal"]), 2)
    assert refused.value.status == 400 and "thal-gap" in refused.value.message


def test_the_vocabulary_is_bounded() -> None:
    for start in range(0, 200, 10):
        texts = [f"value-{i}" for i in range(start, start + 10)]
        assert list(raw._strings("many", framed(texts), 10)) == texts
    assert len(raw._VOCABULARIES["many"].texts) <= Vocabulary.MAX_ELEMENTS


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
    # texts of up to 12 bytes: their head and tail words decide, no words between
    short = ["normal", "fixed", "reversible", "abcdEFGH1234", "é"]
    raw._strings("short", framed(short), len(short))
    assert not raw._VOCABULARIES["short"].inner
    split = raw._VOCABULARIES["short"].split(framed(short * 200), len(short) * 200)
    assert split is not None and split.tolist() == short * 200


def test_a_changed_byte_between_head_and_tail_is_not_taken_for_a_known_element() -> None:
    """Every byte of a long element is compared: one changed byte anywhere makes the split fall back to the
    loop (None), which then reads the new text."""
    known = ["reversable defect", "q" * 64, "fixed defect"]
    raw._strings("long", framed(known), len(known))
    vocabulary = raw._VOCABULARIES["long"]
    assert len(vocabulary.inner) == 7  # 68 framed bytes: head, 7 words between, tail
    assert vocabulary.split(framed(known * 50), 150).tolist() == known * 50
    for text in known:
        for at in range(len(text)):
            changed = text[:at] + chr(ord(text[at]) ^ 1) + text[at + 1 :]
            data = framed([*known, changed])
            assert vocabulary.split(data, 4) is None, (text, at)
            assert list(raw._strings("long", data, 4)) == [*known, changed]
