"""A 2-worker `python -m service` scraped every second by a real Prometheus server (Debian's `prometheus`)
running deploy/prometheus/prometheus.yml and rules.yml, all on loopback: what the tests in this folder that
need a live Prometheus start, and the small HTTP helpers they read it with."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.manifests import PROMETHEUS, ROOT


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


@dataclass(frozen=True)
class Stack:
    service: str  # base URL of the service
    prometheus: str  # base URL of Prometheus
    processes: list[tuple[subprocess.Popen, Path]]  # each with its log, for wait_for


@contextmanager
def service_and_prometheus(artifacts: Path, tmp_path: Path) -> Iterator[Stack]:
    """Both running, the service ready; stopped on the way out."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: `make tools` installs it (Debian package prometheus)"
    service_port, prometheus_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        SERVICE_ARTIFACTS_DIR=str(artifacts),
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
    stack = Stack(
        f"http://127.0.0.1:{service_port}",
        f"http://127.0.0.1:{prometheus_port}",
        [(server, service_log), (scraper, prometheus_log)],
    )
    try:
        wait_for("the service", lambda: get_json(f"{stack.service}/health/ready"), stack.processes)
        yield stack
    finally:
        stop(scraper)
        stop(server)
