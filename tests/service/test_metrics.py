"""GET /metrics: the model metrics count what was answered, and stay right with several workers."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.processes import delta, samples, scrape, start, stop, total, wait_ready


@pytest.fixture(scope="module")
def metrics_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


def test_predictions_probabilities_and_batches_are_counted(
    metrics_client: TestClient, heart_reference: dict[str, Any], heart_version: Path
) -> None:
    manifest = json.loads((heart_version / "manifest.json").read_text())
    version, threshold = manifest["version"], manifest["threshold"]["value"]
    inputs, probabilities = heart_reference["inputs"][:6], heart_reference["probabilities"][:6]
    expected_disease = sum(p >= threshold for p in probabilities)
    before = scrape(metrics_client)
    for patient in inputs[:3]:
        assert metrics_client.post("/predict/heart", json=patient).status_code == 200
    assert metrics_client.post("/predict/heart/batch", json={"instances": inputs[3:]}).status_code == 200
    after = scrape(metrics_client)
    labels = {"model": "heart", "version": version}
    assert delta(before, after, "modelserve_predictions_total", **labels) == 6
    assert delta(before, after, "modelserve_predictions_total", label="disease", **labels) == expected_disease
    assert delta(before, after, "modelserve_predicted_probability_count", **labels) == 6
    assert delta(before, after, "modelserve_predicted_probability_sum", **labels) == pytest.approx(
        sum(probabilities), abs=1e-4
    )
    at_most_half = sum(p <= 0.5 for p in probabilities)
    assert delta(before, after, "modelserve_predicted_probability_bucket", le="0.5", **labels) == at_most_half
    # three ONNX calls (three sequential single requests, then one batch of three)... rows = 6
    assert delta(before, after, "modelserve_batch_rows_sum", **labels) == 6
    assert delta(before, after, "modelserve_inference_seconds_count", **labels) == 4
    missing = sum(patient.get("ca") is None for patient in inputs)
    assert delta(before, after, "modelserve_missing_fields_total", field="ca", **labels) == missing


def test_a_batch_counts_each_missing_field_per_column(metrics_client: TestClient, heart_version: Path) -> None:
    """predict_matrix counts the missing fields of a batch per column (one matrix-vector product)."""
    version = json.loads((heart_version / "manifest.json").read_text())["version"]
    patient = {"age": 61, "sex": 1, "cp": 4, "trestbps": 140, "chol": 230, "ca": 1, "thal": "normal"}
    batch = [patient, {**patient, "ca": None}, {**patient, "ca": None, "chol": None}, {"age": 40, "sex": 0}]
    before = scrape(metrics_client)
    assert metrics_client.post("/predict/heart/batch", json={"instances": batch}).status_code == 200
    after = scrape(metrics_client)
    expected = {"ca": 3, "chol": 2, "thal": 1, "trestbps": 1, "oldpeak": 4}  # oldpeak: never sent
    for field, count in expected.items():
        got = delta(before, after, "modelserve_missing_fields_total", model="heart", version=version, field=field)
        assert got == count, field


def test_digits_count_the_predicted_digit(metrics_client: TestClient, digits_reference: dict[str, Any]) -> None:
    body, expected = digits_reference["inputs"][0], digits_reference["probabilities"][0]
    digit = str(max(range(10), key=expected.__getitem__))
    before = scrape(metrics_client)
    assert metrics_client.post("/predict/digit", json=body).status_code == 200
    after = scrape(metrics_client)
    assert delta(before, after, "modelserve_predictions_total", model="digits", label=digit) == 1
    assert delta(before, after, "modelserve_predictions_total", model="digits") == 1


def test_validation_failures_by_reason_class(metrics_client: TestClient) -> None:
    before = scrape(metrics_client)
    post = metrics_client.post
    assert post("/predict/heart", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    assert post("/predict/heart", json={"age": 300, "sex": 1}).status_code == 422
    assert post("/predict/heart", json={"age": 50, "sex": 1, "colour": 2}).status_code == 422
    assert post("/predict/heart", content=b"age=50", headers={"content-type": "text/plain"}).status_code == 415
    assert post("/predict/digit", json={"image": [[0] * 8] * 8}).status_code == 422
    after = scrape(metrics_client)
    for model, reason in [
        ("heart", "malformed_json"),
        ("heart", "range"),
        ("heart", "unknown_field"),
        ("heart", "content_type"),
        ("digits", "blank_image"),
    ]:
        assert delta(before, after, "modelserve_validation_failures_total", model=model, reason=reason) == 1, reason
    assert delta(before, after, "modelserve_predictions_total") == 0


def test_model_info_readiness_and_training_reference(metrics_client: TestClient, heart_version: Path) -> None:
    manifest = json.loads((heart_version / "manifest.json").read_text())
    version, sha = manifest["version"], manifest["files"]["model.onnx"]["sha256"]
    exposition = scrape(metrics_client)
    found = samples(exposition)
    assert found[("modelserve_model_info", frozenset({"model": "heart", "version": version, "sha256": sha}.items()))]
    assert total(exposition, "modelserve_ready") == 1
    assert total(exposition, "modelserve_model_ready", model="heart") == 1
    reference = manifest["monitoring"]["test_probability_histogram"]
    for bound, cumulative in zip(reference["le"], reference["cumulative_counts"], strict=True):
        ratio = total(exposition, "modelserve_reference_probability_ratio", version=version, bound=repr(float(bound)))
        assert ratio == pytest.approx(cumulative / reference["count"])


def test_http_metrics_by_route_template_without_metrics_itself(metrics_client: TestClient) -> None:
    metrics_client.get("/models/heart")
    exposition = scrape(metrics_client)
    assert total(exposition, "litestar_requests_total", app_name="modelserve", path="/models/{name}") >= 1
    assert total(exposition, "litestar_requests_total", path="/metrics") == 0
    bounds = {
        float(labels["le"])
        for (name, frozen), _ in samples(exposition).items()
        if name == "litestar_request_duration_seconds_bucket"
        for labels in [dict(frozen)]
    }
    assert min(bounds) == 0.0001


def test_http_metrics_count_unmatched_routes_and_statuses_under_one_label(metrics_client: TestClient) -> None:
    before = scrape(metrics_client)
    for path in ("/no/such/route", "/another/unknown/path"):
        assert metrics_client.get(path).status_code == 404
    assert metrics_client.get("/predict/heart").status_code == 405  # a known path, wrong method
    assert (
        metrics_client.post("/predict/heart", content=b"{", headers={"content-type": "application/json"}).status_code
        == 400
    )
    after = scrape(metrics_client)
    # Raw paths never become label values (a client could create unbounded series).
    assert delta(before, after, "litestar_requests_total", path="<unmatched>", status_code="404") == 2
    assert delta(before, after, "litestar_requests_total", path="<unmatched>", status_code="405") == 1
    assert delta(before, after, "litestar_requests_total", path="/predict/heart", status_code="400") == 1
    assert all("/no/such" not in line for line in after.splitlines())
    assert total(after, "litestar_requests_in_progress", path="/predict/heart") == 0


def test_cells_update_exactly_what_prometheus_client_would() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from service.metrics import CounterCell, HistogramCell

    values = [0.0, 0.0001, 0.00010001, 0.0005, 0.003, 0.25, 2.5, 7.0, 0.1, 0.1]
    expositions = []
    for use_cells in (False, True):
        registry = CollectorRegistry()
        buckets = (0.0001, 0.0005, 0.1, 2.5)
        histogram = Histogram("h", "h", ["m"], buckets=buckets, registry=registry).labels("x")
        counter = Counter("c", "c", ["m"], registry=registry).labels("x")
        if use_cells:
            cell, counter_cell = HistogramCell(histogram), CounterCell(counter)
            cell.observe_many(values[:5])
            for value in values[5:]:
                cell.observe(value)
            counter_cell.inc()
            counter_cell.inc(3)
        else:
            for value in values:
                histogram.observe(value)
            counter.inc()
            counter.inc(3)
        lines = generate_latest(registry).decode().splitlines()
        expositions.append("\n".join(line for line in lines if "_created" not in line))  # creation times differ
    assert expositions[0] == expositions[1]
    assert 'h_bucket{le="0.0001",m="x"} 2.0' in expositions[1]  # a value on a bound counts in that bucket


@pytest.fixture(scope="module")
def two_workers(small_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    metrics_dir = tmp_path_factory.mktemp("metrics")
    stale = metrics_dir / "counter_999999.db"
    stale.write_bytes(b"left over by a previous run")
    process, url = start(small_artifacts, SERVICE_WORKERS="2", SERVICE_METRICS_DIR=str(metrics_dir))
    try:
        wait_ready(process, url)
        yield {"url": url, "dir": metrics_dir, "stale": stale}
    finally:
        stop(process)


def test_two_workers_one_scrape_counts_every_request(
    two_workers: dict[str, Any], heart_reference: dict[str, Any]
) -> None:
    assert not two_workers["stale"].exists(), "the metrics directory is emptied at start"
    sent = 60
    for index in range(sent):  # a new connection each time, so both workers get requests
        patient = heart_reference["inputs"][index % len(heart_reference["inputs"])]
        assert httpx.post(f"{two_workers['url']}/predict/heart", json=patient, timeout=10).status_code == 200
    exposition = httpx.get(f"{two_workers['url']}/metrics", timeout=10).text
    assert total(exposition, "modelserve_predictions_total", model="heart") == sent
    assert total(exposition, "modelserve_predicted_probability_count", model="heart") == sent
    assert total(exposition, "litestar_requests_total", path="/predict/heart", status_code="200") == sent
    writers = {path.name.rsplit("_", 1)[-1] for path in two_workers["dir"].glob("counter_*.db")}
    assert len(writers) == 2, f"both workers should have counted: {writers}"
    assert total(exposition, "modelserve_ready") == 1


def test_exposition_passes_promtool(two_workers: dict[str, Any]) -> None:
    httpx.post(f"{two_workers['url']}/predict/heart", json={"age": 300, "sex": 1}, timeout=10)
    exposition = httpx.get(f"{two_workers['url']}/metrics", timeout=10).text
    assert "modelserve_validation_failures_total" in exposition
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


def test_the_default_metrics_directory_is_created_and_removed_with_the_process(
    small_artifacts: Path, tmp_path: Path
) -> None:
    process, url = start(small_artifacts, TMPDIR=str(tmp_path), SERVICE_SHUTDOWN_DELAY="0")
    try:
        wait_ready(process, url)
        directory = tmp_path / f"modelserve-metrics-{process.pid}"
        assert any(directory.glob("*.db")), "the workers write their metric files there"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert not directory.exists()
    finally:
        stop(process)
