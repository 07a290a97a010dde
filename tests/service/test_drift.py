"""Input drift: the bucket folding both halves share, the reference training writes, the live counters and
GET /models/{name}'s reference (the Prometheus side: tests/deploy/test_drift_prometheus.py)."""

from __future__ import annotations

import json
import time
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.contract import HEART_FEATURE_NAMES, DriftColumn, Manifest
from service.drift import (
    IMAGE_STATISTICS,
    MISSING,
    BucketFolder,
    category_column,
    image_statistics,
    number_column,
)
from service.metrics import InputDrift
from service.settings import Settings
from tests.service.processes import delta, samples, scrape


@pytest.fixture(scope="module")
def drift_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


def test_folder_counts_like_a_bisection_per_value() -> None:
    """Bucket i holds edges[i-1] < v <= edges[i]; NaN goes to the missing slot; values on an edge included."""
    rng = np.random.default_rng(0)
    edges = [[1.0, 2.0, 3.5], [10.0], [-1.0, 0.0, 1.0, 2.0, 5.0]]
    values = rng.choice([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.5, 4.0, 10.0, 11.0, np.nan], size=(500, 3))
    folder = BucketFolder(edges)
    counts = folder.counts(values.astype(np.float32))
    expected = np.zeros_like(counts)
    for row in values:
        for column, value in enumerate(row):
            slot = folder.slots - 1 if np.isnan(value) else bisect_left(edges[column], value)
            expected[column * folder.slots + slot] += 1
    assert counts.tolist() == expected.tolist()
    assert counts.sum() == values.size


def test_reference_shares_are_what_the_service_would_count() -> None:
    rng = np.random.default_rng(1)
    ages = rng.normal(55, 9, 300).round().astype(np.float32)
    ages[:12] = np.nan
    column = number_column("age", ages)
    assert len(column.buckets) == len(column.edges) + 1 <= 10
    assert column.missing == pytest.approx(12 / 300)
    assert sum(column.shares) + column.missing == pytest.approx(1)
    assert all(float(np.float32(edge)) == edge for edge in column.edges)  # exact in the float32 matrix
    assert column.buckets[0].startswith("(-inf, ") and column.buckets[-1].endswith(", +inf)")
    counts = BucketFolder([column.edges]).counts(ages.reshape(-1, 1))
    assert (counts[: len(column.buckets)] / 300).tolist() == pytest.approx(column.shares)
    # A discrete column keeps one bucket per value (no empty slivers between them).
    vessels = number_column("ca", np.array([0, 0, 0, 0, 1, 1, 2, 3, 0, 1], dtype=np.float32))
    assert vessels.edges == [0.0, 1.0, 2.0] and min(vessels.shares) > 0
    thal = category_column("thal", np.array([3, 7, 7, np.nan]), (3.0, 6.0, 7.0), ("normal", "fixed", "reversible"))
    assert (thal.buckets, thal.shares, thal.missing) == (["normal", "fixed", "reversible"], [0.25, 0, 0.5], 0.25)


def test_a_drift_column_must_be_consistent() -> None:
    good = {"name": "age", "kind": "number", "edges": [40.0, 60.0], "buckets": ["a", "b", "c"]}
    assert msgspec.convert({**good, "shares": [0.2, 0.5, 0.3], "missing": 0.0}, DriftColumn).problem() is None
    short = msgspec.convert({**good, "shares": [0.5, 0.5], "missing": 0.0}, DriftColumn)
    assert "as many shares" in (short.problem() or "")
    unsorted = msgspec.convert({**good, "edges": [60.0, 40.0], "shares": [0.2, 0.5, 0.3], "missing": 0.0}, DriftColumn)
    assert "increase strictly" in (unsorted.problem() or "")
    with pytest.raises(msgspec.ValidationError):  # a share is a fraction
        msgspec.convert({**good, "shares": [0.2, 1.5, 0.3], "missing": 0.0}, DriftColumn)


def test_image_statistics_measure_ink_extent_and_position() -> None:
    image = np.zeros((8, 8), dtype=np.float32)
    image[2:5, 3] = 16  # a vertical stroke, 3 pixels tall, in column 3
    moved = np.roll(image, 2, axis=1)
    blank = np.zeros((8, 8), dtype=np.float32)
    stats = image_statistics(np.stack([image, moved, blank]).reshape(3, 64), 8)
    assert dict(zip(IMAGE_STATISTICS, stats[0].tolist(), strict=True)) == {
        "ink": 48.0,
        "ink_height": 3.0,
        "ink_width": 1.0,
        "ink_row": 3.0,
        "ink_column": 3.0,
    }
    assert stats[1, 4] == 5.0 and stats[1, 0] == 48.0
    assert stats[2, 0] == 0 and np.isnan(stats[2, 1:]).all()  # no ink: no extent, no position


def test_the_manifest_holds_every_heart_feature(heart_version: Path) -> None:
    manifest = msgspec.json.decode((heart_version / "manifest.json").read_bytes(), type=Manifest)
    assert manifest.drift is not None and manifest.drift.source == "training split"
    assert [column.name for column in manifest.drift.columns] == list(HEART_FEATURE_NAMES)
    assert manifest.drift.rows == manifest.data["split"]["train"]
    for column in manifest.drift.columns:
        assert sum(column.shares) + column.missing == pytest.approx(1), column.name


def test_models_route_shows_the_reference(drift_client: TestClient, heart_version: Path) -> None:
    manifest = json.loads((heart_version / "manifest.json").read_text())
    answer = drift_client.get("/models/heart").json()
    assert answer["drift"] == manifest["drift"]
    digits = drift_client.get("/models/digits").json()["drift"]
    assert [column["name"] for column in digits["columns"]] == [*IMAGE_STATISTICS, "predicted", "confident"]


def _bucket_of(column: dict[str, Any], value: float) -> str:
    return column["buckets"][bisect_left(column["edges"], value)]


def test_live_rows_are_counted_per_bucket(drift_client: TestClient, heart_version: Path) -> None:
    """Single rows (queued, folded within FLUSH_SECONDS) and a batch (folded at once) land in the buckets
    the reference defines; a null `thal` counts as missing; every row is counted once per feature."""
    manifest = json.loads((heart_version / "manifest.json").read_text())
    columns = {column["name"]: column for column in manifest["drift"]["columns"]}
    labels = {"model": "heart", "version": manifest["version"]}
    patient = {"age": 71, "sex": 1, "cp": 4, "chol": 250, "thal": None}
    before = scrape(drift_client)
    for _ in range(3):
        assert drift_client.post("/predict/heart", json=patient).status_code == 200
    batch = [{**patient, "age": 30, "thal": "fixed"}] * (InputDrift.FLUSH_ROWS + 4)
    assert drift_client.post("/predict/heart/batch", json={"instances": batch}).status_code == 200
    time.sleep(InputDrift.FLUSH_SECONDS + 0.5)
    after = scrape(drift_client)

    def grew(feature: str, bucket: str) -> float:
        return delta(before, after, "modelserve_input_bucket_total", **labels, feature=feature, bucket=bucket)

    rows = 3 + len(batch)
    for feature in HEART_FEATURE_NAMES:
        assert sum(grew(feature, bucket) for bucket in [*columns[feature]["buckets"], MISSING]) == rows, feature
    old, young = _bucket_of(columns["age"], 71), _bucket_of(columns["age"], 30)
    assert old != young and (grew("age", old), grew("age", young)) == (3, len(batch))
    assert (grew("thal", MISSING), grew("thal", "fixed")) == (3, len(batch))
    assert grew("trestbps", MISSING) == rows
    reference = {
        bucket: value
        for (name, got), value in samples(after).items()
        if name == "modelserve_input_reference_share"
        and dict(got).get("feature") == "thal"
        and dict(got).get("version") == manifest["version"]
        for bucket in [dict(got)["bucket"]]
    }
    assert reference == {
        **dict(zip(columns["thal"]["buckets"], columns["thal"]["shares"], strict=True)),
        MISSING: columns["thal"]["missing"],
    }
