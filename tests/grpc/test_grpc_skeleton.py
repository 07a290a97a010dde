"""gRPC single rows read by their learned skeleton (service.api.grpc.service: raw_parts, then
service.api.v2.skeleton.read_raw): whatever raw contents follow a message form the general path took
before, the answer or the refusal is the general path's, code and message."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.api.grpc import inference_pb2 as pb
from service.api.grpc.service import InferenceService
from service.api.grpc.tensors import is_plain_header, raw_parts
from service.api.v2 import skeleton
from service.contract import HEART_EXAMPLE
from service.dataplane import DataPlane
from service.settings import Settings
from tests.v2.tensors import NUMBER

NUMBERS = [name for name in HEART_EXAMPLE if name != "thal"]
FORMATS = {"FP32": "<f", "FP64": "<d", "INT64": "<q"}


class AbortedError(Exception):
    pass


class Context:
    """What the servicer asks of grpc's context: abort with a code and a message (raises, as grpc's does)."""

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        raise AbortedError(code.name, message)


@pytest.fixture(scope="module")
def servicer(small_artifacts: Any) -> Iterator[tuple[InferenceService, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    plane = DataPlane(Settings(artifacts_dir=small_artifacts, access_log=False))
    loop.run_until_complete(plane.load_all())
    plane.ready = True
    yield InferenceService(plane), loop
    loop.close()


def _message(datatype: str = "FP32", request_id: str = "", contents: list[bytes] | None = None) -> bytes:
    """The example patient as tritonclient.grpc sends one row: every input raw, the raw contents last."""
    request = pb.ModelInferRequest(model_name="heart", id=request_id)
    for name in HEART_EXAMPLE:
        request.inputs.add(name=name, datatype="BYTES" if name == "thal" else datatype, shape=[1, 1])
    if contents is None:
        numbers = [struct.pack(FORMATS[datatype], _cast(datatype, HEART_EXAMPLE[name])) for name in NUMBERS]
        contents = [*numbers, _thal(HEART_EXAMPLE["thal"].encode())]
    request.raw_input_contents.extend(contents)
    return request.SerializeToString()


def _cast(datatype: str, value: Any) -> Any:
    return int(value) if datatype == "INT64" else float(value)


def _thal(text: bytes) -> bytes:
    return struct.pack("<I", len(text)) + text


def _learned(service: InferenceService) -> dict[bytes, Any]:
    return skeleton._learned_raw(service.plane.get("heart").model.tensor_inputs, "grpc")


def _answer(servicer: Any, message: bytes, *, general: bool = False) -> tuple[str, Any]:
    service, loop = servicer
    request = pb.ModelInferRequest.FromString(message)
    try:
        answer = loop.run_until_complete(service.ModelInfer(request, Context(), None if general else message))
    except AbortedError as refused:
        return "refused", refused.args
    return "ok", answer.SerializeToString()


def _general(servicer: Any, message: bytes) -> tuple[str, Any]:
    """The general path's answer: the message's bytes not given, so nothing is read from them or learned."""
    return _answer(servicer, message, general=True)


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64"])
def test_a_form_taken_once_is_learned_and_answers_the_same(servicer: Any, datatype: str) -> None:
    service, _ = servicer
    _learned(service).clear()
    message = _message(datatype)
    first = _answer(servicer, message)
    assert first[0] == "ok" and first == _general(servicer, message)
    assert len(_learned(service)) == 1
    (header,) = _learned(service)
    assert is_plain_header(header) and message.startswith(header)
    assert _answer(servicer, message) == first  # now read by the skeleton
    assert len(_learned(service)) == 1


def test_messages_with_an_id_are_not_learned(servicer: Any) -> None:
    service, _ = servicer
    _learned(service).clear()
    message = _message(request_id="call-1")
    answer = _answer(servicer, message)
    assert answer[0] == "ok" and b"call-1" in answer[1]
    assert not _learned(service)


def test_only_whole_fields_without_raw_contents_are_a_header() -> None:
    message = _message()
    header, data, sizes = raw_parts(message, pb.ModelInferRequest.FromString(message))
    assert is_plain_header(header) and len(sizes) == 13 and len(data) == sum(sizes)
    assert not is_plain_header(header[:-1])  # cut inside the last input's fields
    assert not is_plain_header(message)  # raw contents in it
    # a message whose raw contents are not all at its end has no header
    request = pb.ModelInferRequest.FromString(message)
    reordered = pb.ModelInferRequest(raw_input_contents=request.raw_input_contents[:1]).SerializeToString()
    contents = request.raw_input_contents[1:]
    rest = pb.ModelInferRequest(model_name="heart", inputs=request.inputs, raw_input_contents=contents)
    shuffled = reordered + rest.SerializeToString()
    assert raw_parts(shuffled, pb.ModelInferRequest.FromString(shuffled)) is None


def test_int64_values_of_four_bytes_are_refused(servicer: Any) -> None:
    """INT64 elements are 8 bytes (a 4-byte reading of them was once taken for a single row)."""
    service, _ = servicer
    _learned(service).clear()
    short = [struct.pack("<i", int(HEART_EXAMPLE[name])) for name in NUMBERS] + [_thal(b"fixed")]
    message = _message("INT64", contents=short)
    for _ in range(2):
        refused = _answer(servicer, message)
        assert refused == _general(servicer, message)
        assert refused[0] == "refused" and refused[1][0] == "INVALID_ARGUMENT"
        assert "'age'" in refused[1][1] and "INT64" in refused[1][1]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    datatype=st.sampled_from(["FP32", "FP64"]),
    changed=st.dictionaries(st.sampled_from(NUMBERS), NUMBER, max_size=3),
    thal=st.one_of(
        st.just(_thal(b"fixed")),
        st.sampled_from([b"fixes", b"\xff\xfexed", b"norma", b"normal"]).map(_thal),
        st.binary(min_size=0, max_size=12),  # anything: a lying length, not UTF-8, short
    ),
    # the same bytes framed otherwise: one entry cut in two, two joined, one left out, one more
    reframe=st.sampled_from(["none", "split", "join", "drop", "extra"]),
)
def test_whatever_follows_a_learned_form_is_answered_as_the_general_path_answers(
    servicer: Any, datatype: str, changed: dict[str, float], thal: bytes, reframe: str
) -> None:
    service, _ = servicer
    _learned(service).clear()
    assert _answer(servicer, _message(datatype))[0] == "ok"  # learned
    numbers = [struct.pack(FORMATS[datatype], changed.get(name, float(HEART_EXAMPLE[name]))) for name in NUMBERS]
    contents = [*numbers, thal]
    if reframe == "split":
        contents = [contents[0][:2], contents[0][2:], *contents[1:]]
    elif reframe == "join":
        contents = [contents[0] + contents[1], *contents[2:]]
    elif reframe == "drop":
        contents = contents[:-1]
    elif reframe == "extra":
        contents = [*contents, b""]
    candidate = _message(datatype, contents=contents)
    taken = (parts := raw_parts(candidate, pb.ModelInferRequest.FromString(candidate))) is not None and (
        skeleton.read_raw(service.plane.get("heart").model, parts[0], memoryview(parts[1]), "grpc", parts[2])
        is not None
    )
    event(f"read by the skeleton: {taken}")
    got = _answer(servicer, candidate)
    assert got == _general(servicer, candidate)
    assert got[0] == "ok" or not taken
