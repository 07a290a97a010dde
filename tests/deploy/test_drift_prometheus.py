"""End to end: input drift seen by a real Prometheus server scraping a 2-worker `python -m service` that runs
deploy/prometheus/rules.yml (tests/deploy/prometheus_stack.py starts both).

First patients and images resampled from the training split: every monitored column's PSI stays below
0.1 and no drift alert starts. Then a shifted population (older patients, higher cholesterol, `thal`
mostly missing; digits moved two pixels right): the shifted columns' PSI reach 0.2, their drift alert
and the missing-rate alert become pending, and the columns left alone stay below 0.2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.deploy.prometheus_stack import get_json, post, query, service_and_prometheus, wait_for
from training.data import heart_records, load_cleveland
from training.preprocess import stratified_split

ROWS = 600  # per model and phase; the shifted phase sends three times as many
SINGLES = 30  # of them sent one by one (the micro-batched path), the rest in batches of 100
HEART_SHIFTED = {"age", "chol", "thal"}
DIGITS_SHIFTED = {"ink_column"}


def training_split(manifest: dict[str, Any], y: np.ndarray) -> np.ndarray:
    split = manifest["data"]["split"]
    dev, _ = stratified_split(y, split["test_size"], split["seed"])
    return dev


def heart_population(version: Path, rows: int, shifted: bool, rng: np.random.Generator) -> list[dict[str, Any]]:
    data = load_cleveland()
    manifest = json.loads((version / "manifest.json").read_text())
    records = heart_records(data.frame.iloc[training_split(manifest, data.y)])
    patients = [dict(records[i]) for i in rng.integers(0, len(records), rows)]
    if shifted:
        for patient in patients:
            patient["age"] = min(120, patient["age"] + 15)
            if patient["chol"] is not None:
                patient["chol"] = min(700, patient["chol"] * 1.4)
            if rng.random() < 0.9:
                patient["thal"] = None
    return patients


def digit_population(version: Path, rows: int, shifted: bool, rng: np.random.Generator) -> list[dict[str, Any]]:
    digits = load_digits()
    manifest = json.loads((version / "manifest.json").read_text())
    images = digits.data[training_split(manifest, digits.target)]
    images = images[rng.integers(0, len(images), rows)]
    if shifted:  # another scanner: the same digits two pixels to the right
        grid = images.reshape(-1, 8, 8)
        moved = np.zeros_like(grid)
        moved[:, :, 2:] = grid[:, :, :-2]
        images = moved.reshape(-1, 64)
    return [{"pixels": [int(v) for v in image]} for image in images]


def send(service: str, route: str, rows: list[dict[str, Any]]) -> None:
    for row in rows[:SINGLES]:
        assert post(f"{service}/predict/{route}", row) == 200
    for start_row in range(SINGLES, len(rows), 100):
        assert post(f"{service}/predict/{route}/batch", {"instances": rows[start_row : start_row + 100]}) == 200


def psi(prometheus: str, model: str) -> dict[str, float]:
    result = query(prometheus, f'model_version_feature:modelserve_input_psi:1h{{model="{model}"}}')
    return {series["metric"]["feature"]: float(series["value"][1]) for series in result}


def psi_over(prometheus: str, model: str, rows: int) -> dict[str, float]:
    """Every column's PSI once the recording rules have seen `rows` rows (empty until then)."""
    recorded = query(prometheus, f'model_version_feature:modelserve_input_rows:1h{{model="{model}"}}')
    if not recorded or min(float(series["value"][1]) for series in recorded) < rows:
        return {}
    time.sleep(2)  # the PSI rule runs after the rows rule in the same evaluation: read the next one
    return psi(prometheus, model)


def counted(prometheus: str, model: str) -> float:
    """Rows counted for the model's first column (every column counts every row)."""
    result = query(prometheus, f'sum by (feature) (modelserve_input_bucket_total{{model="{model}"}})')
    return max((float(series["value"][1]) for series in result), default=0.0)


def pending(prometheus: str, alert: str) -> set[tuple[str, str]]:
    result = query(prometheus, f'ALERTS{{alertname="{alert}", alertstate="pending"}}')
    return {(series["metric"]["model"], series["metric"]["feature"]) for series in result}


@pytest.mark.slow
def test_prometheus_sees_shifted_inputs_and_not_resampled_ones(
    small_artifacts: Path, heart_version: Path, digits_version: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(14)
    with service_and_prometheus(small_artifacts, tmp_path) as stack:
        service, prometheus, processes = stack.service, stack.prometheus, stack.processes
        # A first scrape holds every bucket's zero, so that increase() sees all the rows sent below.
        wait_for(
            "the zero-valued bucket counters",
            lambda: (
                {s["metric"]["model"] for s in query(prometheus, "modelserve_input_bucket_total")}
                == {"heart", "digits"}
            ),
            processes,
        )
        reference = query(prometheus, "count by (model) (modelserve_input_reference_share)")
        assert {s["metric"]["model"]: int(s["value"][1]) for s in reference} == {
            "heart": sum(len(c["buckets"]) + 1 for c in get_json(f"{service}/models/heart")["drift"]["columns"]),
            "digits": sum(len(c["buckets"]) + 1 for c in get_json(f"{service}/models/digits")["drift"]["columns"]),
        }

        # Phase 1: the training split's population.
        send(service, "heart", heart_population(heart_version, ROWS, False, rng))
        send(service, "digit", digit_population(digits_version, ROWS, False, rng))
        for model in ("heart", "digits"):  # every row counted once, whichever worker answered it
            wait_for(f"{model} rows counted", lambda m=model: counted(prometheus, m) == ROWS, processes)
        stable = {
            model: wait_for(
                f"{model} PSI over every row",
                lambda m=model: psi_over(prometheus, m, ROWS),
                processes,
            )
            for model in ("heart", "digits")
        }
        for model, values in stable.items():
            columns = get_json(f"{service}/models/{model}")["drift"]["columns"]
            assert set(values) == {column["name"] for column in columns}  # one PSI per monitored column
            assert max(values.values()) < 0.1, (model, values)
        assert pending(prometheus, "ModelserveInputDrift") == set()

        # Phase 2: a shifted population, three times as many rows.
        send(service, "heart", heart_population(heart_version, 3 * ROWS, True, rng))
        send(service, "digit", digit_population(digits_version, 3 * ROWS, True, rng))
        shifted = {
            model: wait_for(
                f"{model} PSI over the shifted rows",
                lambda m=model: psi_over(prometheus, m, 4 * ROWS),
                processes,
            )
            for model in ("heart", "digits")
        }
        for model, moved in (("heart", HEART_SHIFTED), ("digits", DIGITS_SHIFTED)):
            assert {f for f, value in shifted[model].items() if value >= 0.2} >= moved, (model, shifted[model])
        assert shifted["heart"]["sex"] < 0.1, shifted["heart"]  # a column the shift left alone
        wanted = {("heart", f) for f in HEART_SHIFTED} | {("digits", f) for f in DIGITS_SHIFTED}
        drifting = wait_for(
            "the drift alerts to become pending",
            lambda: (found := pending(prometheus, "ModelserveInputDrift")) >= wanted and found,
            processes,
        )
        assert ("heart", "sex") not in drifting
        assert ("heart", "thal") in wait_for(
            "the missing-rate alert", lambda: pending(prometheus, "ModelserveInputMissing"), processes
        )
        rules = [r for g in get_json(f"{prometheus}/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
