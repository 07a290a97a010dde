"""deploy/grafana/dashboard.json: it parses, every panel queries Prometheus, and every query reads metrics the
service exposes (or recording rules from deploy/prometheus/rules.yml)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.deploy.manifests import DEPLOY, MODEL_METRICS, PROMETHEUS, litestar_metrics, metrics_in, recorded_in

DASHBOARD = DEPLOY / "grafana" / "dashboard.json"


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def expressions() -> list[str]:
    board = dashboard()
    exprs = [target["expr"] for panel in panels() for target in panel["targets"]]
    exprs += [var["query"]["query"] for var in board["templating"]["list"] if var["type"] == "query"]
    exprs += [annotation["expr"] for annotation in board["annotations"]["list"]]
    return exprs


def test_dashboard_parses_with_unique_ids_and_uid() -> None:
    board = dashboard()
    assert board["uid"] == "modelserve" and board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert {var["name"] for var in board["templating"]["list"]} >= {"datasource", "job", "model"}


def test_every_panel_queries_the_prometheus_datasource() -> None:
    assert len(panels()) >= 7
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["refId"]
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24


def test_every_metric_referenced_exists() -> None:
    known = MODEL_METRICS | litestar_metrics()
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    recorded = {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}
    for expr in expressions():
        used = metrics_in(expr) | recorded_in(expr)
        assert used, f"no metric in {expr}"
        assert used <= known | recorded, f"unknown metrics {used - known - recorded} in {expr}"


def test_dashboard_covers_what_operators_watch() -> None:
    """Request rate, errors, latency percentiles, predictions by label, probability vs reference, versions, reloads,
    input drift."""
    used = set().union(*(metrics_in(expr) for expr in expressions()))
    assert {
        "litestar_requests_total",
        "litestar_request_duration_seconds_bucket",
        "modelserve_predictions_total",
        "modelserve_predicted_probability_bucket",
        "modelserve_reference_probability_ratio",
        "modelserve_model_info",
        "modelserve_reloads_total",
        "modelserve_model_ready",
        "modelserve_input_reference_share",
    } <= used
    recorded = set().union(*(recorded_in(expr) for expr in expressions()))
    assert {  # the drift row: PSI per feature, live shares of the chosen feature, missing shares
        "model_version_feature:modelserve_input_psi:1h",
        "model_version_feature_bucket:modelserve_input_share:1h",
        "model_version_feature:modelserve_input_missing_excess:1h",
    } <= recorded
    quantiles = {expr.split(",")[0] for expr in expressions() if "litestar_request_duration_seconds_bucket" in expr}
    assert {"histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"} <= quantiles
    assert any('status_code=~"5.."' in expr for expr in expressions())
