"""Predictions through V2 equal those through /predict for the same rows, and match reference.json."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.v2.tensors import digits_inputs, heart_inputs, output


@pytest.mark.parametrize("threshold", [None, 0.3])
def test_heart_every_reference_row_equals_the_batch_route(
    client: TestClient, heart_reference: dict[str, Any], threshold: float | None
) -> None:
    patients = heart_reference["inputs"]
    assert any(len(p) < 13 or None in p.values() for p in patients), "the reference should have missing values"
    query = "" if threshold is None else f"?threshold={threshold}"
    batch = client.post(f"/predict/heart/batch{query}", json={"instances": patients}).json()["predictions"]
    body: dict[str, Any] = {"inputs": heart_inputs(patients)}
    if threshold is not None:
        body["parameters"] = {"threshold": threshold}
    answer = client.post("/v2/models/heart/infer", json=body).json()
    # One matrix, one model call either way: the numbers are identical, not merely close.
    assert output(answer, "probability")["data"] == [row["probability"] for row in batch]
    assert output(answer, "prediction")["data"] == [row["prediction"] for row in batch]
    assert output(answer, "label")["data"] == [row["label"] for row in batch]
    assert output(answer, "probability")["data"] == pytest.approx(heart_reference["probabilities"], abs=1e-5)


def test_heart_single_rows_equal_the_single_route(client: TestClient, heart_reference: dict[str, Any]) -> None:
    for patient in heart_reference["inputs"][:5]:
        single = client.post("/predict/heart", json=patient).json()
        answer = client.post("/v2/models/heart/infer", json={"inputs": heart_inputs([patient])}).json()
        assert output(answer, "probability")["data"] == pytest.approx([single["probability"]], abs=1e-6)
        assert output(answer, "label")["data"] == [single["label"]]


def test_digits_every_reference_row_equals_the_batch_route(
    client: TestClient, digits_reference: dict[str, Any]
) -> None:
    items = digits_reference["inputs"]
    batch = client.post("/predict/digit/batch", json={"instances": items}).json()["predictions"]
    answer = client.post("/v2/models/digits/infer", json={"inputs": digits_inputs(items)}).json()
    probabilities = output(answer, "probabilities")
    assert probabilities["shape"] == [len(items), 10]
    assert probabilities["data"] == [value for row in batch for value in row["probabilities"]]
    assert output(answer, "digit")["data"] == [row["digit"] for row in batch]
    assert output(answer, "probability")["data"] == [row["probability"] for row in batch]
    expected = [value for row in digits_reference["probabilities"] for value in row]
    assert probabilities["data"] == pytest.approx(expected, abs=1e-5)
