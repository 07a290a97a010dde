"""End to end: the service with 2 workers, scraped by a real Prometheus server (Debian's `prometheus`) that
runs deploy/prometheus/prometheus.yml and rules.yml, all on loopback.

Prometheus must count every prediction whichever worker answered it, evaluate every rule without an
error, and join the live probability histogram with the training reference (the drift rules) on the
real label values.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import PROMETHEUS, ROOT
from tests.deploy.test_runtime_image_contract import DIGIT_PIXELS

HEART = {"age": 61, "sex": 1, "cp": 4, "trestbps": 140, "chol": 260, "thalach": 140, "oldpeak": 1.5}
HEART_ROWS = 30  # 20 single requests + one batch of 10
DIGIT_ROWS = 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post(url: str, body: object) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def wait_for(what: str, condition: Callable[[], Any], processes: list[tuple[subprocess.Popen, Path]]) -> Any:
    deadline = time.monotonic() + 90
    last: Any = None
    while time.monotonic() < deadline:
        for process, log in processes:
            assert process.poll() is None, f"{process.args[0]} exited {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            last = condition()
        except (urllib.error.URLError, ConnectionError):
            last = None
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    answer = get_json(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def by_model(result: list[dict[str, Any]]) -> dict[str, float]:
    return {series["metric"]["model"]: float(series["value"][1]) for series in result}


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("w") as sink:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prometheus_config(tmp_path: Path, service_port: int) -> Path:
    """deploy/prometheus/prometheus.yml and rules.yml, pointed at the test's port and sped up to 1 s."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(tmp_path / "rules.yml")]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{service_port}"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_prometheus_scrapes_every_worker_and_evaluates_the_rules(small_artifacts: Path, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: `make tools` installs it (Debian package prometheus)"
    service_port, prometheus_port = free_port(), free_port()
    service, prometheus = f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{prometheus_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        SERVICE_ARTIFACTS_DIR=str(small_artifacts),
        SERVICE_HOST="127.0.0.1",
        SERVICE_PORT=str(service_port),
        SERVICE_WORKERS="2",
        SERVICE_METRICS_DIR=str(tmp_path / "metrics"),
    )
    service_log, prometheus_log = tmp_path / "service.log", tmp_path / "prometheus.log"
    server = start([sys.executable, "-m", "service"], service_log, env)
    scraper = start(
        [
            binary,
            f"--config.file={prometheus_config(tmp_path, service_port)}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        prometheus_log,
    )
    processes = [(server, service_log), (scraper, prometheus_log)]
    try:
        wait_for("the service", lambda: get_json(f"{service}/health/ready"), processes)
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
    finally:
        stop(scraper)
        stop(server)
