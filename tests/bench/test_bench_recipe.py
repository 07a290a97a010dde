"""The tutorial-recipe baseline app and the request bodies, on a freshly trained small artifact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from litestar.testing import TestClient

from bench.payloads import build_payloads, current_version_dir, repeated_rows
from bench.tutorial_app import create_app, load_recipe
from service.contract import HEART_EXAMPLE, HEART_ONNX_INPUT, ONNX_FILE, REFERENCE_FILE
from training.data import heart_matrix

pytestmark = pytest.mark.slow  # the small_artifacts fixture trains both models once per session


def onnx_probabilities(version_dir: Path, patients: list[dict[str, object]]) -> np.ndarray:
    session = ort.InferenceSession(str(version_dir / ONNX_FILE), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {HEART_ONNX_INPUT: heart_matrix(pd.DataFrame(patients))})
    return np.asarray(output, dtype=np.float64)


def test_recipe_matches_the_onnx_model_on_the_tutorial_patient(small_artifacts: Path, heart_version: Path) -> None:
    recipe = load_recipe(small_artifacts)
    assert recipe.version == heart_version.name
    expected = onnx_probabilities(heart_version, [HEART_EXAMPLE])[0]
    assert recipe.predict(dict(HEART_EXAMPLE)) == pytest.approx(expected, abs=1e-5)


def test_recipe_matches_the_recorded_torch_probabilities(small_artifacts: Path, heart_version: Path) -> None:
    """Every reference row, including the ones with missing values, one DataFrame row at a time."""
    reference = json.loads((heart_version / REFERENCE_FILE).read_text())
    recipe = load_recipe(small_artifacts)
    got = [recipe.predict(row) for row in reference["inputs"]]
    np.testing.assert_allclose(got, reference["probabilities"], atol=1e-5)


def test_recipe_app_answers_like_a_service(small_artifacts: Path, heart_version: Path) -> None:
    with TestClient(app=create_app(small_artifacts)) as client:
        response = client.post("/predict/heart", json=HEART_EXAMPLE)
        assert response.status_code == 200
        body = response.json()
        assert body["probability"] == pytest.approx(onnx_probabilities(heart_version, [HEART_EXAMPLE])[0], abs=1e-5)
        assert body["prediction"] == int(body["probability"] >= body["threshold"])
        assert body["version"] == heart_version.name
        missing = {**HEART_EXAMPLE, "chol": None, "thal": None}
        assert client.post("/predict/heart", json=missing).status_code == 200
        assert client.get("/health/ready").status_code == 200
        assert client.get("/health/live").status_code == 200


def test_payloads_from_the_reference_files(small_artifacts: Path, heart_version: Path, digits_version: Path) -> None:
    payloads = build_payloads(small_artifacts, batch_rows=1000)
    assert json.loads(payloads.heart_one) == HEART_EXAMPLE
    digit = json.loads(payloads.digit_one)
    assert list(digit) == ["pixels"]
    assert len(digit["pixels"]) == 64
    heart_batch = json.loads(payloads.heart_batch)["instances"]
    heart_reference = json.loads((heart_version / REFERENCE_FILE).read_text())["inputs"]
    assert len(heart_batch) == 1000
    assert heart_batch[: len(heart_reference)] == heart_reference
    assert len(json.loads(payloads.digit_batch)["instances"]) == 1000
    assert payloads.heart_version == heart_version.name
    assert payloads.digits_version == digits_version.name
    assert payloads.batch_rows == 1000


def test_repeated_rows_cycles_in_order() -> None:
    rows = [{"a": 1}, {"a": 2}, {"a": 3}]
    assert repeated_rows(rows, 7) == [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 1}, {"a": 2}, {"a": 3}, {"a": 1}]


def test_a_missing_artifact_says_to_train(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make train"):
        current_version_dir(tmp_path, "heart")
    (tmp_path / "heart").mkdir()
    (tmp_path / "heart" / "CURRENT").write_text("gone\n")
    with pytest.raises(FileNotFoundError, match="gone"):
        current_version_dir(tmp_path, "heart")
