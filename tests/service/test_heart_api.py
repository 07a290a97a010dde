"""POST /predict/heart and /predict/heart/batch through the real app (TestClient runs the lifespan)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient

from service.contract import HEART_EXAMPLE, HEART_FEATURES, HEART_LABELS

NULLABLE = [spec.name for spec in HEART_FEATURES if spec.nullable]


def test_example_patient_gets_a_complete_prediction(client: TestClient) -> None:
    response = client.post("/predict/heart", json=HEART_EXAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"probability", "threshold", "prediction", "label", "missing", "version"}
    assert 0.0 <= body["probability"] <= 1.0
    assert body["prediction"] == int(body["probability"] >= body["threshold"])
    assert body["label"] == HEART_LABELS[body["prediction"]]
    assert body["missing"] == []
    models = client.get("/models/heart").json()
    assert body["version"] == models["version"]
    assert body["threshold"] == models["threshold"]


def test_null_and_absent_fields_are_missing_in_canonical_order(client: TestClient) -> None:
    patient = {**HEART_EXAMPLE, "chol": None, "thal": None}
    del patient["ca"]
    del patient["slope"]
    body = client.post("/predict/heart", json=patient).json()
    assert body["missing"] == ["chol", "slope", "ca", "thal"]
    minimal = client.post("/predict/heart", json={"age": 50, "sex": 1}).json()
    assert minimal["missing"] == NULLABLE


def test_missing_is_not_the_same_as_zero(client: TestClient) -> None:
    """A missing cholesterol must reach the model as missing (NaN), not as some number."""
    missing = client.post("/predict/heart", json={**HEART_EXAMPLE, "chol": None}).json()["probability"]
    low = client.post("/predict/heart", json={**HEART_EXAMPLE, "chol": 50}).json()["probability"]
    high = client.post("/predict/heart", json={**HEART_EXAMPLE, "chol": 700}).json()["probability"]
    assert missing not in (low, high)


@pytest.mark.parametrize(("threshold", "expected"), [(0.0001, 1), (0.9999, 0)])
def test_threshold_override_decides_the_prediction(client: TestClient, threshold: float, expected: int) -> None:
    body = client.post(f"/predict/heart?threshold={threshold}", json=HEART_EXAMPLE).json()
    assert body["threshold"] == threshold
    assert body["prediction"] == expected
    assert body["label"] == HEART_LABELS[expected]


@pytest.mark.parametrize("threshold", ["0", "1", "-0.1", "1.5", "nan", "inf", "abc", ""])
def test_threshold_outside_the_open_interval_is_422(client: TestClient, expect_error: Any, threshold: str) -> None:
    response = client.post(f"/predict/heart?threshold={threshold}", json=HEART_EXAMPLE)
    expect_error(response, 422, "validation_failed", "threshold")


def test_unknown_query_parameter_is_refused(client: TestClient, expect_error: Any) -> None:
    response = client.post("/predict/heart?treshold=0.3", json=HEART_EXAMPLE)
    expect_error(response, 422, "validation_failed", "treshold")


BAD_PATIENTS = [
    ("wrong type: list", {"age": [50]}, "age"),
    ("out of range: age 0", {"age": 0}, "age"),
    ("out of range: age 121", {"age": 121}, "age"),
    ("out of range: trestbps 49", {"trestbps": 49}, "trestbps"),
    ("out of range: chol 701", {"chol": 701}, "chol"),
    ("out of range: thalach 251", {"thalach": 251}, "thalach"),
    ("out of range: oldpeak -5.1", {"oldpeak": -5.1}, "oldpeak"),
    ("out of range: ca 4", {"ca": 4}, "ca"),
    ("not an integer: ca 1.5", {"ca": 1.5}, "ca"),
    ("category not listed: cp 5", {"cp": 5}, "cp"),
    ("category not listed: sex 2", {"sex": 2}, "sex"),
    ("thal as a code, not a name", {"thal": 6}, "thal"),
    ("thal unknown name", {"thal": "broken"}, "thal"),
    ("bool as number", {"age": True}, "age"),
    ("bool as category", {"fbs": False}, "fbs"),
    ("string as number", {"age": "50"}, "age"),
    ("string as category", {"sex": "1"}, "sex"),
    ("infinity (1e999)", {"chol": 1e999}, "chol"),
    ("required field null", {"age": None}, "age"),
    ("unknown field", {"smoker": 1}, "smoker"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_PATIENTS, ids=[case for case, _, _ in BAD_PATIENTS])
def test_bad_patient_is_422_naming_the_field(
    client: TestClient, expect_error: Any, case: str, change: dict[str, Any], field: str
) -> None:
    patient = {**HEART_EXAMPLE, **change}
    # json= would refuse to encode 1e999; send it literally, as a client could.
    content = _encode(patient)
    response = client.post("/predict/heart", content=content, headers={"content-type": "application/json"})
    expect_error(response, 422, "validation_failed", field)


def _encode(patient: dict[str, Any]) -> bytes:
    return json.dumps(patient).replace("Infinity", "1e999").encode()


@pytest.mark.parametrize("field", ["age", "sex"])
def test_required_field_absent_is_422(client: TestClient, expect_error: Any, field: str) -> None:
    patient = {k: v for k, v in HEART_EXAMPLE.items() if k != field}
    expect_error(client.post("/predict/heart", json=patient), 422, "validation_failed", field)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_rejected_as_malformed_json(
    client: TestClient, expect_error: Any, literal: bytes
) -> None:
    body = b'{"age": 50, "sex": 1, "chol": ' + literal + b"}"
    response = client.post("/predict/heart", content=body, headers={"content-type": "application/json"})
    expect_error(response, 400, "malformed_json")


def test_category_error_says_what_is_allowed(client: TestClient, expect_error: Any) -> None:
    error = expect_error(client.post("/predict/heart", json={**HEART_EXAMPLE, "cp": 9}), 422, "validation_failed", "cp")
    assert "1, 2, 3, 4" in error["fields"][0]["reason"]


def test_batch_answers_every_row_in_order(client: TestClient, heart_reference: dict[str, Any]) -> None:
    rows = heart_reference["inputs"][:25]
    response = client.post("/predict/heart/batch?threshold=0.5", json={"instances": rows})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"predictions", "version", "threshold"}
    assert body["threshold"] == 0.5
    assert len(body["predictions"]) == len(rows)
    for row, prediction in zip(rows, body["predictions"], strict=True):
        assert set(prediction) == {"probability", "prediction", "label", "missing"}
        assert prediction["prediction"] == int(prediction["probability"] >= 0.5)
        assert prediction["missing"] == [name for name in row if row[name] is None]
    # the batch agrees with one-at-a-time requests
    singles = [client.post("/predict/heart", json=row).json()["probability"] for row in rows[:5]]
    assert singles == [p["probability"] for p in body["predictions"][:5]]


def test_one_bad_row_rejects_the_batch_naming_row_and_field(client: TestClient, expect_error: Any) -> None:
    rows = [HEART_EXAMPLE] * 5
    rows = [*rows[:3], {**HEART_EXAMPLE, "age": 300}, *rows[4:]]
    response = client.post("/predict/heart/batch", json={"instances": rows})
    expect_error(response, 422, "validation_failed", "instances.3.age")


def test_batch_row_with_unknown_field_names_it(client: TestClient, expect_error: Any) -> None:
    rows = [HEART_EXAMPLE, {**HEART_EXAMPLE, "colour": "red"}]
    response = client.post("/predict/heart/batch", json={"instances": rows})
    expect_error(response, 422, "validation_failed", "instances.1.colour")


def test_batch_row_missing_required_field_names_it(client: TestClient, expect_error: Any) -> None:
    rows = [HEART_EXAMPLE, HEART_EXAMPLE, {"sex": 1}]
    response = client.post("/predict/heart/batch", json={"instances": rows})
    expect_error(response, 422, "validation_failed", "instances.2.age")


def test_empty_batch_is_422(client: TestClient, expect_error: Any) -> None:
    expect_error(client.post("/predict/heart/batch", json={"instances": []}), 422, "validation_failed", "instances")


def test_batch_over_the_limit_is_422(client: TestClient, expect_error: Any, settings: Any) -> None:
    rows = [HEART_EXAMPLE] * (settings.max_batch + 1)
    response = client.post("/predict/heart/batch", json={"instances": rows})
    error = expect_error(response, 422, "validation_failed", "instances")
    assert str(settings.max_batch) in error["fields"][0]["reason"]


def test_batch_at_the_limit_is_answered(client: TestClient, settings: Any) -> None:
    rows = [HEART_EXAMPLE] * settings.max_batch
    response = client.post("/predict/heart/batch", json={"instances": rows})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == settings.max_batch


@pytest.mark.parametrize(
    ("body", "field"),
    [({"rows": [HEART_EXAMPLE]}, "rows"), ([HEART_EXAMPLE], "body"), ({"instances": HEART_EXAMPLE}, "instances")],
)
def test_batch_of_the_wrong_shape_is_422(client: TestClient, expect_error: Any, body: Any, field: str) -> None:
    expect_error(client.post("/predict/heart/batch", json=body), 422, "validation_failed", field)
