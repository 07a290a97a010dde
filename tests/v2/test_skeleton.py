"""V2 single rows read by a learned skeleton (service.api.v2.skeleton): whatever bytes a client puts where
a learned body had its values, the skeleton takes only what the general path takes, read the same."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.api.v2 import skeleton
from service.api.v2.infer import _plain, infer
from service.contract import HEART_EXAMPLE, HEART_FEATURES
from service.dataplane import Served
from service.errors import ServiceError
from tests.service.processes import start, stop, wait_ready
from tests.v2.tensors import heart_inputs
from tests.v2.test_single import MAX_BATCH, _general, edges

COMPACT = (",", ":")
JSON = {"content-type": "application/json"}


def _bodies() -> list[bytes]:
    """Bodies a client may send again and again: compact and flat; spaced (json.dumps' default, as
    tritonclient) and nested; inputs out of order and some left out, with a threshold and outputs asked."""
    flat = {"inputs": heart_inputs([HEART_EXAMPLE], nested=False)}
    nested = {"inputs": heart_inputs([HEART_EXAMPLE], nested=True)}
    partial = [tensor for tensor in heart_inputs([HEART_EXAMPLE], nested=False) if tensor["name"] not in ("ca", "chol")]
    odd = {
        "parameters": {"threshold": 0.3},
        "inputs": partial[::-1],
        "outputs": [{"name": "label"}, {"name": "probability"}],
    }
    return [
        json.dumps(flat, separators=COMPACT).encode(),
        json.dumps(nested).encode(),
        json.dumps(odd, separators=COMPACT).encode(),
    ]


def _learn(served: Served, body: bytes) -> tuple[bytes, list[bytes], tuple[bytes, ...]]:
    """The body taken once by the single path (which learns it), and its cut: values and the pieces around."""
    assert _plain("heart", served, body) is not None
    cut = skeleton._cut(body)
    assert cut is not None
    key, values = cut
    assert key in skeleton._learned(served.model.tensor_inputs)
    return key[0], values, key[1:]


def _splice(marker: bytes, pieces: tuple[bytes, ...], values: list[bytes]) -> bytes:
    """The body with these bytes where the values were (the inverse of skeleton._cut)."""
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out += [marker, value, b"]", piece]
    return b"".join(out)


def _agree(served: Served, body: bytes) -> bool:
    """Whether the skeleton took the body, after checking its row against the general path's matrix."""
    known = skeleton.read(served.model, body)
    if known is None:
        return False
    general = _general(served.model, body)
    assert not isinstance(general, ServiceError), f"the skeleton took what the general path refuses: {general}"
    np.testing.assert_array_equal(np.array([known[1]], dtype=np.float32), general)
    return True


def test_a_learned_body_is_read_by_its_skeleton_with_what_it_asked(heart: tuple[Served, Any]) -> None:
    served, _ = heart
    for body in _bodies():
        first = _plain("heart", served, body)
        assert first is not None
        known = skeleton.read(served.model, body)
        assert known is not None, body
        assert known == (first[1:3], first[3])  # threshold and outputs asked, and the row
        assert _agree(served, body)


def test_every_edge_value_of_every_input_is_read_as_the_general_path_reads_it(heart: tuple[Served, Any]) -> None:
    served, _ = heart
    taken = 0
    for body in _bodies():
        marker, values, pieces = _learn(served, body)
        for index in range(len(values)):
            column = skeleton._learned(served.model.tensor_inputs)[(marker, *pieces)].columns[index]
            spec = HEART_FEATURES[column]
            nested = values[index][:1] == b"["
            for value in [*edges(spec), "1", 2**63, 1e400, -0.0, "a,b", "x]", 'q"', "\\", "é"]:
                text = json.dumps(value).encode()
                spliced = [*values[:index], b"[" + text if nested else text, *values[index + 1 :]]
                taken += _agree(served, _splice(marker, pieces, spliced))
    assert taken > 100


FRAGMENTS = st.one_of(
    st.sampled_from([b"0", b"1", b"2", b"3", b"80", b"2.3", b"-0", b"1e2", b"1e400", b"null", b"true", b"[]"]),
    st.sampled_from([b'"normal"', b'"fixed"', b'"reversible"', b'"a,b"', b'"\\u0041"', b'"\\"', b'"\xff"', b'"']),
    st.sampled_from([b"1,2", b"1,", b",1", b"", b" 3 ", b"[1", b"[[1", b"1]", b"{}", b'"a', b'b"', b"\\", b"00"]),
    st.binary(max_size=6),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(range(len(_bodies()))), data=st.data())
def test_whatever_bytes_stand_where_the_values_were_the_skeleton_never_takes_what_the_general_path_refuses(
    heart: tuple[Served, Any], which: int, data: st.DataObject
) -> None:
    served, _ = heart
    marker, values, pieces = _learn(served, _bodies()[which])
    changed = list(values)
    columns = skeleton._learned(served.model.tensor_inputs)[(marker, *pieces)].columns
    for index in data.draw(st.lists(st.integers(0, len(values) - 1), max_size=4)):
        plain = [json.dumps(value).encode() for value in edges(HEART_FEATURES[columns[index]])]
        fragment = data.draw(st.sampled_from(plain) | FRAGMENTS)
        changed[index] = b"[" + fragment if values[index][:1] == b"[" and data.draw(st.booleans()) else fragment
    body = _splice(marker, pieces, changed)
    event("taken by the skeleton" if _agree(served, body) else "declined")
    _aligned(served, body, changed)


class _Trusting:
    """Heart's inputs, and a tensor_row that takes any values: what the skeleton itself read, unchecked."""

    def __init__(self, served: Served) -> None:
        self.tensor_inputs = served.model.tensor_inputs

    @staticmethod
    def tensor_row(values: list[Any]) -> list[Any]:
        return list(values)


def _aligned(served: Served, body: bytes, tokens: list[bytes]) -> None:
    """Whenever the skeleton reads values, each is its own cut's value, decoded alone (a stray comma or a
    string across cuts must not shift them)."""
    known = skeleton.read(_Trusting(served), body)
    if known is None:
        return
    columns = skeleton._learned(served.model.tensor_inputs)[skeleton._cut(body)[0]].columns  # type: ignore[index]
    for column, token in zip(columns, tokens, strict=True):
        alone = json.loads(token[1:] if token[:1] == b"[" else token)
        assert known[1][column] == alone and type(known[1][column]) is type(alone)


def test_a_stray_comma_and_a_string_across_cuts_do_not_shift_the_values(heart: tuple[Served, Any]) -> None:
    """`1,2` in one value and `"a` `b"` in two others make as many elements as values, shifted: declined."""
    served, _ = heart
    marker, values, pieces = _learn(served, _bodies()[0])  # compact, flat, in column order: thal last
    shifted = [b"50,1", *values[1:11], b'"fi', b'xed"']
    assert skeleton.read(_Trusting(served), _splice(marker, pieces, shifted)) is None


def test_bodies_with_an_id_are_not_learned_and_the_learned_are_bounded(heart: tuple[Served, Any]) -> None:
    served, _ = heart
    learned = skeleton._learned(served.model.tensor_inputs)
    with_id = json.dumps({"id": "x1", "inputs": heart_inputs([HEART_EXAMPLE], nested=False)}).encode()
    assert _plain("heart", served, with_id) is not None
    assert skeleton._cut(with_id)[0] not in learned  # type: ignore[index]
    assert skeleton.read(served.model, with_id) is None
    saved = dict(learned)
    try:
        for threshold in range(1, skeleton.LIMIT + 10):  # every threshold its own skeleton
            body = {"inputs": heart_inputs([HEART_EXAMPLE]), "parameters": {"threshold": threshold / 100}}
            assert _plain("heart", served, json.dumps(body).encode()) is not None
        assert len(learned) == skeleton.LIMIT
    finally:
        learned.clear()
        learned.update(saved)


def test_a_skeletons_answer_is_the_single_paths(heart: tuple[Served, asyncio.AbstractEventLoop]) -> None:
    served, loop = heart
    for body in _bodies():
        learned = skeleton._learned(served.model.tensor_inputs)
        saved = dict(learned)
        learned.clear()
        try:
            first, _ = loop.run_until_complete(infer("heart", served, body, MAX_BATCH))  # learns it
        finally:
            learned.update(saved)
        again, _ = loop.run_until_complete(infer("heart", served, body, MAX_BATCH))
        assert skeleton.read(served.model, body) is not None
        assert again == first


def test_over_sockets_every_reference_patient_as_a_v2_single_equals_the_predict_route(
    small_artifacts: Path, heart_reference: dict[str, Any]
) -> None:
    """A real `python -m service`: every reference patient sent as a V2 single in the same envelope (so all
    but the first of each envelope are read by its learned skeleton), flat and compact, and nested and
    spaced as tritonclient spaces JSON, answers as POST /predict/heart does."""
    process, url = start(small_artifacts, SERVICE_ACCESS_LOG="false")
    try:
        wait_ready(process, url)
        with httpx.Client(base_url=url, timeout=10) as client:
            for patient in heart_reference["inputs"]:
                single = client.post("/predict/heart", json=patient).json()
                for nested, separators in ((False, COMPACT), (True, None)):
                    body = json.dumps({"inputs": heart_inputs([patient], nested=nested)}, separators=separators)
                    response = client.post("/v2/models/heart/infer", content=body, headers=JSON)
                    assert response.status_code == 200, response.text
                    outputs = {tensor["name"]: tensor["data"] for tensor in response.json()["outputs"]}
                    assert outputs["probability"] == [pytest.approx(single["probability"], abs=1e-6)]
                    assert outputs["prediction"] == [single["prediction"]]
                    assert outputs["label"] == [single["label"]]
    finally:
        stop(process)
