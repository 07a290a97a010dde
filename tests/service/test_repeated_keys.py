"""A JSON object with a repeated key is refused (400 `repeated_key`, naming it), on /predict and on V2.

The check (service.api.repeated_keys) proves a body clean by counting its colons against the keys the
decoded request held (exact for heart, explicit nulls included), and parses again only when they differ.
The property test compares it with an independent reference on random JSON texts (repeated keys,
explicit nulls, colons and escaped quotes inside strings, odd whitespace), with every lower bound the
caller may give; the route tests go through the real application, with and without explicit nulls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.api.repeated_keys import refuse_repeated_keys
from service.contract import HEART_EXAMPLE
from service.errors import ServiceError
from tests.v2.binary import frame
from tests.v2.tensors import heart_inputs

JSON = {"content-type": "application/json"}

# ---- the check against a reference, on random JSON texts -----------------------------------------

_KEYS = st.sampled_from(["a", "b", "age", 'q"t', "c:d", "\\", "ü"])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["x", "a:b", '":', '{"a": 1, "a": 2}', '\\"', "null"]),
)


class Obj(list[tuple[str, Any]]):
    """An object as written: its pairs in order, repeats allowed."""


def _trees(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(leaves, max_size=4),
        st.lists(st.tuples(_KEYS, leaves), max_size=5).map(Obj),
    )


TREES = st.recursive(_SCALARS, _trees, max_leaves=20)
SPACE = st.sampled_from(["", " ", "\n  ", "\t"])


@st.composite
def texts(draw: st.DrawFn) -> tuple[bytes, Any]:
    tree = draw(TREES)

    def write(value: Any) -> str:
        pad = draw(SPACE)
        if isinstance(value, Obj):
            return "{" + ",".join(f"{pad}{json.dumps(k)}{draw(SPACE)}:{pad}{write(v)}" for k, v in value) + "}"
        if isinstance(value, list):
            return "[" + f",{pad}".join(write(v) for v in value) + "]"
        return json.dumps(value)

    return write(tree).encode(), tree


def reference(value: Any, path: str = "") -> str | None:
    """The dotted path of the first repeated key, depth first in the text's order."""
    if isinstance(value, Obj):
        seen: set[str] = set()
        for key, _ in value:
            if key in seen:
                return f"{path}.{key}" if path else key
            seen.add(key)
        children = [(v, f"{path}.{k}" if path else k) for k, v in value]
    elif isinstance(value, list):
        children = [(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
    else:
        return None
    for child, child_path in children:
        if (found := reference(child, child_path)) is not None:
            return found
    return None


def distinct_keys(value: Any) -> int:
    if isinstance(value, Obj):
        return len({k for k, _ in value}) + sum(distinct_keys(v) for _, v in value)
    if isinstance(value, list):
        return sum(distinct_keys(v) for v in value)
    return 0


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts(), share=st.floats(0, 1))
def test_refuses_exactly_the_texts_with_a_repeated_key(text: tuple[bytes, Any], share: float) -> None:
    body, tree = text
    known = int(distinct_keys(tree) * share)  # any lower bound the caller may know of, the exact count included
    expected = reference(tree)
    if expected is None:
        refuse_repeated_keys(body, known)
        return
    with pytest.raises(ServiceError) as raised:
        refuse_repeated_keys(body, known)
    assert (raised.value.status, raised.value.code, raised.value.reason) == (400, "repeated_key", "repeated_key")
    assert raised.value.fields == [(expected, "given more than once")]


# ---- through the application ----------------------------------------------------------------------


def _post(client: TestClient, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post(path, content=body, headers=headers or JSON)


PATIENT = json.dumps(HEART_EXAMPLE)[1:-1]  # the tutorial patient's pairs, to repeat one of them
NO_CA = json.dumps({k: v for k, v in HEART_EXAMPLE.items() if k != "ca"})[1:-1]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/predict/heart", '{"age": 80, ' + PATIENT + "}", "age"),  # counted: no null anywhere
        ("/predict/heart", "{" + NO_CA + ', "ca": null, "ca": null}', "ca"),  # null twice: counted as one key given
        ("/predict/heart", "{" + PATIENT + ', "thal": null, "thal": "normal"}', "thal"),
        ("/predict/heart/batch", '{"instances": [{' + PATIENT + '}, {"sex": 0, ' + PATIENT + "}]}", "instances.1.sex"),
        ("/predict/heart/batch", '{"instances": [{' + PATIENT + '}], "instances": [{' + PATIENT + "}]}", "instances"),
        ("/predict/digit", '{"pixels": [' + ",".join(["0"] * 64) + '], "pixels": null}', "pixels"),
        ("/predict/digit/batch", '{"instances": [{"image": [[0, 9]], "image": [[9, 0]]}]}', "instances.0.image"),
    ],
)
def test_rest_refuses_a_repeated_key_naming_it(
    client: TestClient, expect_error: Any, path: str, body: str, field: str
) -> None:
    error = expect_error(_post(client, path, body.encode()), 400, "repeated_key", field)
    assert error["fields"] == [{"field": field, "reason": "given more than once"}]
    assert repr(field.rsplit(".", 1)[-1]) in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        "{" + NO_CA + ', "ca": null}',  # an explicit null: a key given, counted
        '{\n  "age" : 63 ,"sex":1\n}',  # spaced colons
        '{"instances": [{"age": 63, "sex": 1}, {"age": 63, "sex": 1, "thal": null}]}',  # the same keys in two rows
    ],
)
def test_rest_answers_bodies_without_a_repetition(client: TestClient, body: str) -> None:
    path = "/predict/heart/batch" if body.startswith('{"instances"') else "/predict/heart"
    response = _post(client, path, body.encode())
    assert response.status_code == 200, response.text


def test_the_value_of_a_repeated_key_is_never_used(client: TestClient) -> None:
    # the same patient once with age 20 then 80, once the other way: neither order is answered
    for ages in ((20, 80), (80, 20)):
        body = "{" + PATIENT.replace('"age": 63', f'"age": {ages[0]}') + f', "age": {ages[1]}' + "}"
        assert _post(client, "/predict/heart", body.encode()).status_code == 400


V2 = "/v2/models/heart/infer"


def _v2_body(**envelope: Any) -> dict[str, Any]:
    return {"inputs": heart_inputs([HEART_EXAMPLE]), **envelope}


def test_v2_refuses_a_repeated_key_in_the_envelope_and_its_parameters(client: TestClient) -> None:
    text = json.dumps(_v2_body(id="a"))
    cases = {
        text[:-1] + ', "id": "b"}': "id",
        text[:-1] + ', "parameters": {"threshold": 0.3, "threshold": 0.9}}': "parameters.threshold",
        text.replace('"name": "age"', '"name": "age", "name": "sex"', 1): "inputs.0.name",
    }
    for body, field in cases.items():
        response = _post(client, V2, body.encode())
        assert response.status_code == 400, response.text
        assert f"{field}: given more than once" in response.json()["error"]


def test_v2_binary_header_with_a_repeated_key_is_refused(client: TestClient) -> None:
    body, headers = frame(heart_inputs([HEART_EXAMPLE]), {"age", "chol"}, id="x")
    length = int(headers["Inference-Header-Content-Length"])
    header = body[:length].replace(b'"id": "x"', b'"id": "x", "id": "y"')
    headers = {**JSON, "Inference-Header-Content-Length": str(len(header))}
    response = _post(client, V2, header + body[length:], headers)
    assert response.status_code == 400, response.text
    assert "id: given more than once" in response.json()["error"]
    # the same request without the repetition is answered (its raw bytes are not read as JSON)
    clean = {**JSON, "Inference-Header-Content-Length": str(length)}
    assert _post(client, V2, body, clean).status_code == 200


def test_v2_colons_and_nulls_without_a_repetition_are_answered(client: TestClient) -> None:
    body = _v2_body(id="2026-11-28T10:00:00", parameters=None, outputs=None)
    response = _post(client, V2, json.dumps(body).encode())
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "2026-11-28T10:00:00"
