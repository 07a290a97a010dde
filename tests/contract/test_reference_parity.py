"""The contract end to end: train small models, serve them, and get the torch model's probabilities
back over HTTP for every reference row, one at a time and in batches, within 1e-5."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings

TOLERANCE = 1e-5
ROUTES = {"heart": "/predict/heart", "digits": "/predict/digit"}


@pytest.fixture(scope="module")
def client(small_artifacts: Path) -> Iterator[TestClient]:
    with TestClient(app=create_app(Settings(artifacts_dir=small_artifacts, max_batch=50))) as test_client:
        yield test_client


def reference(small_artifacts: Path, model: str) -> dict[str, Any]:
    version = (small_artifacts / model / "CURRENT").read_text().strip()
    return json.loads((small_artifacts / model / version / "reference.json").read_text())


def probabilities(model: str, answer: dict[str, Any]) -> Any:
    return answer["probability"] if model == "heart" else answer["probabilities"]


@pytest.mark.parametrize("model", ["heart", "digits"])
def test_every_reference_row_one_at_a_time(client: TestClient, small_artifacts: Path, model: str) -> None:
    ref = reference(small_artifacts, model)
    assert len(ref["inputs"]) >= 50
    got = []
    for row in ref["inputs"]:
        response = client.post(ROUTES[model], json=row)
        assert response.status_code == 200, response.text
        got.append(probabilities(model, response.json()))
    difference = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(ref["probabilities"], dtype=np.float64))
    assert difference.max() <= TOLERANCE


@pytest.mark.parametrize("model", ["heart", "digits"])
def test_every_reference_row_in_batches(client: TestClient, small_artifacts: Path, model: str) -> None:
    ref = reference(small_artifacts, model)
    got = []
    for start in range(0, len(ref["inputs"]), 50):  # several requests, at the batch limit
        chunk = ref["inputs"][start : start + 50]
        response = client.post(ROUTES[model] + "/batch", json={"instances": chunk})
        assert response.status_code == 200, response.text
        got.extend(probabilities(model, row) for row in response.json()["predictions"])
    assert len(got) == len(ref["probabilities"])
    difference = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(ref["probabilities"], dtype=np.float64))
    assert difference.max() <= TOLERANCE


def test_heart_reference_covers_missing_values(small_artifacts: Path) -> None:
    """The parity above means something for missing values only if the reference has some."""
    rows = reference(small_artifacts, "heart")["inputs"]
    assert any(value is None for row in rows for value in row.values())
