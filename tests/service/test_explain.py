"""`?explain=true` on the prediction routes: exact Shapley values for heart (checked against the `shap`
package on held-out patients), occlusion maps for digits, the refusals, and the metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import shap
from litestar.testing import TestClient

from service.artifact import load_artifact
from service.contract import BACKGROUND_FILE, HEART_EXAMPLE, HEART_FEATURE_NAMES
from service.dataplane import Served
from service.models import MODEL_CLASSES
from service.models.base import EXPLAIN_LIMIT
from tests.service.conftest import ErrorCheck
from tests.service.processes import delta, scrape

HELD_OUT = 50


@pytest.fixture(scope="module")
def heart(small_artifacts: Path) -> Served:
    return Served(MODEL_CLASSES["heart"](load_artifact(small_artifacts, "heart")))


def explain_rows(served: Served, bodies: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Explained in requests' worth of rows (EXPLAIN_LIMIT), as the routes would."""
    model = served.model
    matrix = model.matrix([msgspec.convert(body, model.request) for body in bodies])
    outputs = model.run(matrix)
    decisions = model.decide(outputs, model.threshold)
    explanations = []
    for start in range(0, len(matrix), EXPLAIN_LIMIT):
        part = slice(start, start + EXPLAIN_LIMIT)
        explanations += served.explain_now(matrix[part], outputs[part], decisions[part])
    return matrix, outputs, explanations


def shap_values(served: Served, matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """The `shap` package's exact explainer over the same function (the served graph) and background."""
    model, background = served.model, served.model.background
    assert background is not None

    def f(x: np.ndarray) -> np.ndarray:
        return model.run(np.asarray(x, dtype=np.float32)).astype(np.float64)

    masker = shap.maskers.Independent(background.astype(np.float64), max_samples=len(background))
    explanation = shap.explainers.Exact(f, masker)(matrix.astype(np.float64))
    return explanation.values, float(np.mean(explanation.base_values))


def test_heart_equals_shaps_exact_explainer_on_50_held_out_patients(
    heart: Served, heart_reference: dict[str, Any]
) -> None:
    patients = heart_reference["inputs"][:HELD_OUT]  # reference.json starts with the held-out test split
    assert len(patients) == HELD_OUT
    matrix, outputs, explanations = explain_rows(heart, patients)
    expected, expected_base = shap_values(heart, matrix)
    ours = np.array([[e.contributions[name] for name in HEART_FEATURE_NAMES] for e in explanations])
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    assert abs(explanations[0].base - expected_base) < 1e-6
    np.testing.assert_allclose(ours.sum(axis=1) + explanations[0].base, outputs, atol=1e-5)  # efficiency


def test_a_missing_field_counts_as_what_the_graph_makes_of_missing(heart: Served) -> None:
    """chol left out: the graph imputes it (median + missing indicator), so its contribution is the effect of
    that, against the background's cholesterol values: not zero, and what `shap` gives for the same NaN row."""
    without = {key: value for key, value in HEART_EXAMPLE.items() if key != "chol"}
    matrix, outputs, (explanation,) = explain_rows(heart, [without])
    assert np.isnan(matrix[0, HEART_FEATURE_NAMES.index("chol")])
    expected, _ = shap_values(heart, matrix)
    ours = np.array([explanation.contributions[name] for name in HEART_FEATURE_NAMES])
    np.testing.assert_allclose(ours, expected[0], atol=1e-4)
    assert abs(explanation.contributions["chol"]) > 1e-6
    assert abs(ours.sum() + explanation.base - float(outputs[0])) < 1e-5


def test_heart_single_route_explains_and_adds_up(client: TestClient) -> None:
    plain = client.post("/predict/heart", json=HEART_EXAMPLE).json()
    assert "explanation" not in plain
    answer = client.post("/predict/heart?explain=true&threshold=0.3", json=HEART_EXAMPLE).json()
    explanation = answer["explanation"]
    assert explanation["method"] == "shapley" and explanation["unit"] == "probability"
    assert list(explanation["contributions"]) == list(HEART_FEATURE_NAMES)
    assert answer["threshold"] == 0.3
    assert abs(answer["probability"] - plain["probability"]) < 1e-6
    assert abs(sum(explanation["contributions"].values()) + explanation["base"] - answer["probability"]) < 1e-5
    same = client.post("/predict/heart?explain=false", json=HEART_EXAMPLE).json()
    assert same == plain


def test_heart_batch_route_explains_every_row(client: TestClient, heart_reference: dict[str, Any]) -> None:
    instances = [*heart_reference["inputs"][:3], {"age": 50, "sex": 1}]
    answer = client.post("/predict/heart/batch?explain=true", json={"instances": instances}).json()
    rows = answer["predictions"]
    assert len(rows) == 4
    for row in rows:
        contributions = row["explanation"]["contributions"]
        assert abs(sum(contributions.values()) + row["explanation"]["base"] - row["probability"]) < 1e-5
    assert rows[3]["missing"] == [name for name in HEART_FEATURE_NAMES if name not in ("age", "sex")]


def test_digit_occlusion_map(client: TestClient, digits_reference: dict[str, Any], digits_version: Path) -> None:
    pixels = digits_reference["inputs"][0]["pixels"]
    answer = client.post("/predict/digit?explain=true", json={"pixels": pixels}).json()
    explanation = answer["explanation"]
    assert explanation["method"] == "occlusion" and explanation["digit"] == answer["digit"]
    grid = np.array(explanation["map"])
    assert grid.shape == (8, 8)
    # Recomputed from the two files anyone has: model.onnx's answer with each pixel set to the background's.
    background = json.loads((digits_version / BACKGROUND_FILE).read_text())["rows"][0]
    model = MODEL_CLASSES["digits"](load_artifact(digits_version.parent.parent, "digits"))
    for pixel in (0, 20, 36):
        occluded = np.array([pixels], dtype=np.float32)
        occluded[0, pixel] = background[pixel]
        expected = answer["probability"] - float(model.run(occluded)[0, answer["digit"]])
        assert abs(grid.reshape(-1)[pixel] - expected) < 1e-5
    batch = client.post("/predict/digit/batch?explain=true", json={"instances": [{"pixels": pixels}] * 2}).json()
    assert [row["explanation"]["map"] for row in batch["predictions"]] == [explanation["map"]] * 2


@pytest.mark.parametrize("query", ["explain=yes", "explain=", "explain=TRUE", "explain=1", "explain=true&explain=true"])
def test_every_bad_value_of_explain_is_a_422_naming_it(
    client: TestClient, expect_error: ErrorCheck, query: str
) -> None:
    for path in ("/predict/heart", "/predict/digit"):
        body = HEART_EXAMPLE if path.endswith("heart") else {"pixels": [0] * 64}
        expect_error(client.post(f"{path}?{query}", json=body), 422, "validation_failed", "explain")


def test_too_many_rows_to_explain_is_a_422_before_any_inference(client: TestClient, expect_error: ErrorCheck) -> None:
    before = scrape(client)
    response = client.post(
        "/predict/heart/batch?explain=true", json={"instances": [HEART_EXAMPLE] * (EXPLAIN_LIMIT + 1)}
    )
    expect_error(response, 422, "validation_failed", "explain")
    after = scrape(client)
    assert delta(before, after, "modelserve_predictions_total", model="heart") == 0


def test_rows_that_fail_validation_are_never_explained(client: TestClient, expect_error: ErrorCheck) -> None:
    before = scrape(client)
    bad = {**HEART_EXAMPLE, "age": 500}
    expect_error(client.post("/predict/heart?explain=true", json=bad), 422, "validation_failed", "age")
    instances = [HEART_EXAMPLE, {**HEART_EXAMPLE, "thal": "weird"}]
    response = client.post("/predict/heart/batch?explain=true", json={"instances": instances})
    expect_error(response, 422, "validation_failed", "instances.1.thal")
    after = scrape(client)
    assert delta(before, after, "modelserve_explained_rows_total", model="heart") == 0
    assert delta(before, after, "modelserve_explanation_seconds_count", model="heart") == 0


def test_explained_rows_and_time_are_counted(client: TestClient) -> None:
    before = scrape(client)
    client.post("/predict/heart?explain=true", json=HEART_EXAMPLE).raise_for_status()
    client.post("/predict/heart/batch?explain=true", json={"instances": [HEART_EXAMPLE] * 3}).raise_for_status()
    client.post("/predict/heart", json=HEART_EXAMPLE).raise_for_status()
    after = scrape(client)
    assert delta(before, after, "modelserve_explained_rows_total", model="heart") == 4
    assert delta(before, after, "modelserve_explanation_seconds_count", model="heart") == 2
    assert delta(before, after, "modelserve_explanation_seconds_sum", model="heart") > 0
