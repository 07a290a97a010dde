"""End to end: the service with 2 workers, scraped by a real Prometheus server (Debian's `prometheus`) that
runs deploy/prometheus/prometheus.yml and rules.yml, all on loopback.

Prometheus must count every prediction whichever worker answered it, evaluate every rule without an
error, and join the live probability histogram with the training reference (the drift rules) on the
real label values.
"""

from __future__ import annotations

import math
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import PROMETHEUS
from tests.deploy.prometheus_stack import by_model, get_json, post, query, service_and_prometheus, wait_for
from tests.deploy.test_runtime_image_contract import DIGIT_PIXELS

HEART = {"age": 61, "sex": 1, "cp": 4, "trestbps": 140, "chol": 260, "thalach": 140, "oldpeak": 1.5}
HEART_ROWS = 30  # 20 single requests + one batch of 10
DIGIT_ROWS = 12


@pytest.mark.slow
def test_prometheus_scrapes_every_worker_and_evaluates_the_rules(small_artifacts: Path, tmp_path: Path) -> None:
    with service_and_prometheus(small_artifacts, tmp_path) as stack:
        service, prometheus, processes = stack.service, stack.prometheus, stack.processes
        wait_for(
            "prometheus", lambda: urllib.request.urlopen(f"{prometheus}/-/ready", timeout=2).status == 200, processes
        )
        # A first scrape holds the zero-valued series, so that increase() sees the predictions below.
        wait_for("a first scrape", lambda: query(prometheus, 'up{job="modelserve"} == 1'), processes)
        wait_for(
            "the probability histograms",
            lambda: len(query(prometheus, 'modelserve_predicted_probability_bucket{le="+Inf"}')) == 2,
            processes,
        )

        for _ in range(HEART_ROWS - 10):
            assert post(f"{service}/predict/heart", HEART) == 200
        assert post(f"{service}/predict/heart/batch", {"instances": [HEART] * 10}) == 200
        for _ in range(DIGIT_ROWS):
            assert post(f"{service}/predict/digit", {"pixels": DIGIT_PIXELS}) == 200

        # Every prediction is counted once, whichever of the two workers answered it.
        counted = wait_for(
            "the prediction counts",
            lambda: (
                (counts := by_model(query(prometheus, "sum by (model) (modelserve_predictions_total)")))
                == {"heart": HEART_ROWS, "digits": DIGIT_ROWS}
                and counts
            ),
            processes,
        )
        assert counted == {"heart": HEART_ROWS, "digits": DIGIT_ROWS}
        requests = by_model(
            [
                {"metric": {"model": s["metric"]["path"]}, "value": s["value"]}
                for s in query(prometheus, 'sum by (path) (litestar_requests_total{app_name="modelserve"})')
            ]
        )
        assert requests["/predict/heart"] == HEART_ROWS - 10
        assert requests["/predict/digit"] == DIGIT_ROWS

        # The drift rules join live buckets and the training reference on the real `le` values.
        drift = wait_for(
            "the drift recording rule",
            lambda: query(prometheus, 'model_version_le:modelserve_probability_drift:abs_1h{le="0.5"}'),
            processes,
        )
        assert {series["metric"]["model"] for series in drift} == {"heart", "digits"}
        for series in drift:
            value = float(series["value"][1])
            assert not math.isnan(value) and 0.0 <= value <= 1.0, series
        reference = query(prometheus, "count by (model) (modelserve_reference_probability_ratio)")
        assert by_model(reference) == {"heart": 10, "digits": 10}, "one reference ratio per probability bucket"

        # Every rule evaluates without an error on real data (no many-to-many joins, no bad label sets).
        def evaluated() -> list[dict[str, Any]]:
            groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if all(not rule["lastEvaluation"].startswith("0001") for rule in rules) else []

        rules = wait_for("every rule to be evaluated", evaluated, processes)
        expected = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
        assert len(rules) == sum(len(group["rules"]) for group in expected)
        assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
        alerts = {r["name"]: r["state"] for r in rules if r["type"] == "alerting"}
        assert alerts["ModelserveModelNotReady"] == "inactive"
        assert alerts["ModelserveHigh5xxRatio"] == "inactive"
