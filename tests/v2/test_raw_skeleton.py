"""Binary single rows read by their learned JSON header (service.api.v2.skeleton.read_raw): whatever bytes
follow a header the general path took before, the answer (or the refusal) is the general path's."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.api.v2 import skeleton
from service.api.v2.infer import infer
from service.contract import HEART_EXAMPLE
from service.dataplane import Served
from service.errors import ServiceError
from tests.v2.binary import frame
from tests.v2.tensors import NUMBER, heart_inputs

MAX_BATCH = 1000
NUMBERS = [name for name in HEART_EXAMPLE if name != "thal"]


def _binary(row: dict[str, Any], datatype: str = "FP32", **envelope: Any) -> tuple[bytes, int]:
    """One row as tritonclient.http sends it by default: every input binary, binary outputs asked."""
    inputs = heart_inputs([row], nested=False)
    for tensor in inputs:
        if tensor["name"] != "thal":
            tensor["datatype"] = datatype
    body, headers = frame(inputs, {t["name"] for t in inputs}, **envelope)
    return body, int(headers["Inference-Header-Content-Length"])


def _answer(served: Served, loop: asyncio.AbstractEventLoop, body: bytes, header: int) -> tuple[str, Any]:
    try:
        return "ok", loop.run_until_complete(infer("heart", served, body, MAX_BATCH, header))
    except ServiceError as error:
        return "refused", (error.status, error.message, error.reason)


def _forget(served: Served) -> None:
    skeleton._learned_raw(served.model.tensor_inputs).clear()


def _general(served: Served, loop: asyncio.AbstractEventLoop, body: bytes, header: int) -> tuple[str, Any]:
    """The general path's answer: with nothing learned, and nothing learned from this body afterwards."""
    _forget(served)
    try:
        return _answer(served, loop, body, header)
    finally:
        _forget(served)


def test_a_header_taken_once_is_learned_and_read_the_same(heart: tuple[Served, asyncio.AbstractEventLoop]) -> None:
    served, loop = heart
    _forget(served)
    body, header = _binary(HEART_EXAMPLE, parameters={"binary_data_output": True})
    expected = _general(served, loop, body, header)
    assert expected[0] == "ok" and expected[1][1] is not None  # binary outputs
    assert _answer(served, loop, body, header) == expected  # the general path, which learns the header
    assert skeleton.read_raw(served.model, body[:header], memoryview(body)[header:]) is not None
    assert _answer(served, loop, body, header) == expected  # read by the skeleton: byte for byte the same
    # Another patient with the same header (thal of the same length): the skeleton reads its own values.
    other = {**HEART_EXAMPLE, "age": 41, "oldpeak": 0.0, "ca": 2}
    other_body, other_header = _binary(other, parameters={"binary_data_output": True})
    assert other_body[:other_header] == body[:header]
    assert skeleton.read_raw(served.model, other_body[:header], memoryview(other_body)[header:]) is not None
    assert _answer(served, loop, other_body, header) == _general(served, loop, other_body, header)
    assert _answer(served, loop, other_body, header) != expected


def test_headers_with_an_id_or_an_explanation_are_not_learned(
    heart: tuple[Served, asyncio.AbstractEventLoop],
) -> None:
    served, loop = heart
    _forget(served)
    for envelope in ({"id": "request-1"}, {"parameters": {"explain": True}}):
        body, header = _binary(HEART_EXAMPLE, **envelope)
        assert _answer(served, loop, body, header)[0] == "ok"
        assert not skeleton._learned_raw(served.model.tensor_inputs)


def test_the_learned_headers_are_bounded(heart: tuple[Served, asyncio.AbstractEventLoop]) -> None:
    served, loop = heart
    _forget(served)
    for index in range(skeleton.LIMIT + 10):  # each threshold another header
        body, header = _binary(HEART_EXAMPLE, parameters={"threshold": 0.1 + index / 1000})
        assert _answer(served, loop, body, header)[0] == "ok"
    assert len(skeleton._learned_raw(served.model.tensor_inputs)) == skeleton.LIMIT


def _thal(text: bytes) -> bytes:
    return struct.pack("<I", len(text)) + text


def test_a_tail_that_lies_is_refused_and_a_nan_is_missing(heart: tuple[Served, asyncio.AbstractEventLoop]) -> None:
    served, loop = heart
    _forget(served)
    body, header = _binary(HEART_EXAMPLE)
    assert _answer(served, loop, body, header)[0] == "ok"  # learned
    # thal's 9 bytes claiming 6: the general path's refusal, word for word
    lying = body[:-9] + struct.pack("<I", 6) + b"fixed"
    refused = _answer(served, loop, lying, header)
    assert refused[0] == "refused" and refused == _general(served, loop, lying, header)
    assert "thal" in refused[1][1]
    assert _answer(served, loop, body, header)[0] == "ok"  # learned again (_general forgets)
    for wrong_size in (body + b"\x00", body[:-1]):  # the sizes in the header do not add up to the body
        refused = _answer(served, loop, wrong_size, header)
        assert refused[0] == "refused" and refused == _general(served, loop, wrong_size, header)
        assert _answer(served, loop, body, header)[0] == "ok"
    # NaN where a value may be missing (ca) is read as missing, by the skeleton, as the general path reads it
    assert _answer(served, loop, body, header)[0] == "ok"  # learned again (_general forgets)
    at = header + 4 * NUMBERS.index("ca")
    missing_ca = body[:at] + struct.pack("<f", float("nan")) + body[at + 4 :]
    assert skeleton.read_raw(served.model, body[:header], memoryview(missing_ca)[header:]) is not None
    assert _answer(served, loop, missing_ca, header) == _general(served, loop, missing_ca, header)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    datatype=st.sampled_from(["FP32", "FP64"]),
    changed=st.dictionaries(st.sampled_from(NUMBERS), NUMBER, max_size=3),  # the rest as the learned patient
    thal=st.one_of(
        st.just(_thal(b"fixed")),
        st.sampled_from([b"fixes", b"\xff\xfexed", b"norma"]).map(_thal),  # as long as "fixed", not a category
        st.binary(min_size=9, max_size=9),  # anything: a lying length, not UTF-8
    ),
)
def test_whatever_follows_a_learned_header_is_answered_as_the_general_path_answers(
    heart: tuple[Served, asyncio.AbstractEventLoop], datatype: str, changed: dict[str, float], thal: bytes
) -> None:
    served, loop = heart
    _forget(served)
    body, header = _binary(HEART_EXAMPLE, datatype, parameters={"binary_data_output": True})
    assert _answer(served, loop, body, header)[0] == "ok"  # learned
    numbers = [changed.get(name, float(HEART_EXAMPLE[name])) for name in NUMBERS]
    values = b"".join(struct.pack("<f" if datatype == "FP32" else "<d", number) for number in numbers)
    tail = values + thal  # the numbers in the inputs' order (thal is the last input), then thal's 9 bytes
    assert len(tail) == len(body) - header
    candidate = body[:header] + tail
    taken = skeleton.read_raw(served.model, body[:header], memoryview(candidate)[header:]) is not None
    event(f"read by the skeleton: {taken}")
    got = _answer(served, loop, candidate, header)
    assert got == _general(served, loop, candidate, header)
    assert got[0] == "ok" or not taken


def test_an_int64_value_is_eight_bytes_on_every_path(heart: tuple[Served, asyncio.AbstractEventLoop]) -> None:
    """INT64 elements are 8 bytes: a single row whose INT64 inputs come as 4 bytes each is refused, naming
    the first, as the general path refuses it, and one of 8 bytes each is read (struct's standard "<l" is
    4 bytes: the element formats must not come from numpy's type characters, where "l" is int64)."""
    served, loop = heart
    _forget(served)
    body, header = _binary(HEART_EXAMPLE, "INT64")
    ok = _answer(served, loop, body, header)
    assert ok[0] == "ok" and ok == _general(served, loop, body, header)
    short_header = body[:header].replace(b'"binary_data_size": 8}', b'"binary_data_size": 4}')
    numbers = b"".join(struct.pack("<i", int(HEART_EXAMPLE[name])) for name in NUMBERS)
    short = short_header + numbers + body[header + 8 * len(NUMBERS) :]
    for _ in range(2):  # nothing learned, then with the short form's header learned if it had been taken
        refused = _answer(served, loop, short, len(short_header))
        assert refused[0] == "refused" and refused == _general(served, loop, short, len(short_header))
        assert refused[1][0] == 400 and "'age'" in refused[1][1] and "INT64" in refused[1][1]
