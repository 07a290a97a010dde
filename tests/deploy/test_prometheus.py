"""deploy/prometheus: the real promtool checks the rules, runs their unit tests and checks the scrape config;
the rules read only metrics the service exposes, and the k8s PrometheusRule carries the same groups."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import service.metrics  # noqa: F401  (registers the model metrics in REGISTRY)
from service.settings import Settings
from tests.deploy.manifests import (
    MODEL_METRICS,
    PROMETHEUS,
    by_kind,
    get_routes,
    litestar_metrics,
    metrics_in,
    recorded_in,
)

ALERTS = {
    "ModelserveHigh5xxRatio",
    "ModelserveHighP99Latency",
    "ModelserveInputDrift",
    "ModelserveInputDriftWarning",
    "ModelserveInputMissing",
    "ModelserveModelNotReady",
    "ModelserveNoPredictions",
    "ModelservePredictionDrift",
    "ModelserveReloadFailed",
}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: `make tools` installs it (Debian package prometheus)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def rules() -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS / "rules.yml").read_text())


def all_rules() -> list[dict[str, Any]]:
    return [rule for group in rules()["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", "rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(all_rules())} rules found" in done.stdout


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = rules()
    broken["groups"][1]["rules"][0]["expr"] = "sum by (job) (rate(litestar_requests_total[5m]) >"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(broken))
    done = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert done.returncode != 0


def test_promtool_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", "tests.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rule_unit_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    """The unit tests bite: loosening the 5xx bound makes the firing case fail."""
    shutil.copy(PROMETHEUS / "tests.yml", tmp_path)
    loosened = (PROMETHEUS / "rules.yml").read_text().replace("ratio_rate5m > 0.05", "ratio_rate5m > 0.5")
    assert loosened != (PROMETHEUS / "rules.yml").read_text()
    (tmp_path / "rules.yml").write_text(loosened)
    done = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "ModelserveHigh5xxRatio" in done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    assert {rule["alert"] for rule in all_rules() if "alert" in rule} == ALERTS
    cases: dict[str, set[bool]] = {alert: set() for alert in ALERTS}
    for test in yaml.safe_load((PROMETHEUS / "tests.yml").read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases[case["alertname"]].add(bool(case["exp_alerts"]))
    assert {alert: seen for alert, seen in cases.items() if seen != {True, False}} == {}


def test_rules_read_only_metrics_the_service_exposes() -> None:
    registered = set(REGISTRY._names_to_collectors)
    assert registered >= MODEL_METRICS, "a metric the rules and dashboard use is gone from service.metrics"
    known = MODEL_METRICS | litestar_metrics()
    recorded = {rule["record"] for rule in all_rules() if "record" in rule}
    for rule in all_rules():
        used = metrics_in(rule["expr"])
        assert used <= known, f"{rule.get('record') or rule.get('alert')}: unknown metrics {used - known}"
        assert recorded_in(rule["expr"]) <= recorded, f"unknown recording rule in {rule['expr']}"
    used = set().union(*(metrics_in(rule["expr"]) for rule in all_rules()))
    assert {"litestar_requests_total", "litestar_request_duration_seconds_bucket"} <= used
    assert {"modelserve_predicted_probability_bucket", "modelserve_reference_probability_ratio"} <= used
    assert {"modelserve_input_bucket_total", "modelserve_input_reference_share"} <= used


def test_every_alert_has_severity_and_summary() -> None:
    for rule in all_rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_promtool_checks_the_scrape_config_for_a_local_service() -> None:
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "modelserve"  # the alert rules and the ServiceMonitor's Service use this job
    assert job["metrics_path"] in get_routes()
    settings = Settings()
    assert job["static_configs"] == [{"targets": [f"{settings.host}:{settings.port}"]}]


@pytest.mark.parametrize("overlay", ["base", "production"])
def test_prometheus_rule_carries_the_same_groups(request: pytest.FixtureRequest, overlay: str) -> None:
    rule = by_kind(request.getfixturevalue(f"{overlay}_objects"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == rules()["groups"], (
        "deploy/k8s/base/prometheusrule.yaml differs from deploy/prometheus/rules.yml: copy the groups over"
    )
