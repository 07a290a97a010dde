"""The service's own instrumentation counts V2 requests: model metrics, refusals and HTTP metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from tests.service.processes import delta, scrape
from tests.v2.tensors import digits_inputs, heart_inputs

INFER = "/v2/models/{name}/infer"


def test_v2_inferences_are_counted_like_predictions(
    client: TestClient, heart_reference: dict[str, Any], heart_version: Path
) -> None:
    manifest = json.loads((heart_version / "manifest.json").read_text())
    version, threshold = manifest["version"], manifest["threshold"]["value"]
    patients, probabilities = heart_reference["inputs"][:8], heart_reference["probabilities"][:8]
    labels = {"model": "heart", "version": version}
    before = scrape(client)
    assert client.post("/v2/models/heart/infer", json={"inputs": heart_inputs(patients)}).status_code == 200
    after = scrape(client)
    assert delta(before, after, "modelserve_predictions_total", **labels) == 8
    expected_disease = sum(p >= threshold for p in probabilities)
    assert delta(before, after, "modelserve_predictions_total", label="disease", **labels) == expected_disease
    assert delta(before, after, "modelserve_predicted_probability_count", **labels) == 8
    assert delta(before, after, "modelserve_batch_rows_sum", **labels) == 8
    assert delta(before, after, "modelserve_inference_seconds_count", **labels) == 1
    missing_ca = sum(patient.get("ca") is None for patient in patients)
    assert delta(before, after, "modelserve_missing_fields_total", field="ca", **labels) == missing_ca
    assert delta(before, after, "litestar_requests_total", path=INFER, method="POST", status_code="200") == 1


def test_v2_digits_count_the_predicted_digit(client: TestClient, digits_reference: dict[str, Any]) -> None:
    item, expected = digits_reference["inputs"][0], digits_reference["probabilities"][0]
    digit = str(max(range(10), key=expected.__getitem__))
    before = scrape(client)
    versioned = client.get("/v2/models/digits").json()["versions"][0]
    path = f"/v2/models/digits/versions/{versioned}/infer"
    assert client.post(path, json={"inputs": digits_inputs([item])}).status_code == 200
    after = scrape(client)
    assert delta(before, after, "modelserve_predictions_total", model="digits", label=digit) == 1
    template = "/v2/models/{name}/versions/{version}/infer"
    assert delta(before, after, "litestar_requests_total", path=template, status_code="200") == 1


def test_v2_refusals_are_counted_by_reason_class(client: TestClient) -> None:
    before = scrape(client)
    post = client.post
    assert post("/v2/models/heart/infer", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    out_of_range = heart_inputs([{"age": 300, "sex": 1}])
    assert post("/v2/models/heart/infer", json={"inputs": out_of_range}).status_code == 400
    assert post("/v2/models/heart/infer", json={"inputs": heart_inputs([{"age": 50}])[:1]}).status_code == 400
    bad_type = [{**digits_inputs([{"pixels": [0] * 64}])[0], "datatype": "INT64"}]
    assert post("/v2/models/digits/infer", json={"inputs": bad_type}).status_code == 400
    assert post("/v2/models/cats/infer", json={"inputs": []}).status_code == 404
    after = scrape(client)
    for model, reason in [
        ("heart", "malformed_json"),
        ("heart", "range"),
        ("heart", "missing_required"),
        ("digits", "datatype"),
    ]:
        assert delta(before, after, "modelserve_validation_failures_total", model=model, reason=reason) == 1, reason
    assert delta(before, after, "modelserve_validation_failures_total", model="cats") == 0
    assert delta(before, after, "modelserve_predictions_total") == 0
    assert delta(before, after, "litestar_requests_total", path=INFER, status_code="400") == 4
    assert delta(before, after, "litestar_requests_total", path=INFER, status_code="404") == 1
