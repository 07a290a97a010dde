"""The production overlay's Deployment run for real: `podman kube play` with the image `make image` built.

What a cluster would check, on the pod's hostPort: the start-up, readiness and liveness probe paths,
both models, uid 10001 on a read-only root with a writable /tmp, the admin token from the Secret,
/metrics. Last, `podman kube down` (SIGTERM, then the grace period) under a load generator: every
request that got a connection gets its answer. `make kube-play` runs this file with its figures shown.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.engine import (
    APP_UID,
    DIGIT_PIXELS,
    HEART_PATIENT,
    BuiltImage,
    Engine,
    free_port,
    request,
    wait_ready,
)
from tests.deploy.manifests import K8S, by_kind, kustomize_build

pytestmark = pytest.mark.slow
SECRET_NAME = "modelserve-admin"


@dataclass
class Pod:
    engine: Engine
    kube_file: Path
    base: str
    port: int
    token: str
    container: str
    deployment: dict[str, Any]
    ready_seconds: float
    running: bool = True


def render(image: str, port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The production overlay's Deployment and ConfigMap, as kustomize renders them, with the image just
    built, one replica, and the http port published on the host (what a Service would route to)."""
    objects = kustomize_build(K8S / "overlays" / "production")
    deployment, config = by_kind(objects, "Deployment"), by_kind(objects, "ConfigMap")
    deployment["spec"]["replicas"] = 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["image"] = image if "/" in image else f"localhost/{image}"
    container["imagePullPolicy"] = "Never"
    # podman publishes every containerPort (on the same host port when none is given): a free one each.
    for port_spec in container["ports"]:
        port_spec["hostPort"] = port if port_spec["name"] == "http" else free_port()
    return deployment, config


def admin_secret(token: str) -> dict[str, Any]:
    """The Secret the Deployment's secretKeyRef names, made for this run."""
    data = {"token": base64.b64encode(token.encode()).decode()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET_NAME}, "type": "Opaque", "data": data}


@pytest.fixture(scope="module")
def pod(engine: Engine, built_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    work = tmp_path_factory.mktemp("kube-play")
    port, token = free_port(), secrets.token_hex(24)
    deployment, config = render(built_image.name, port)
    kube_file = work / "modelserve.yaml"
    kube_file.write_text(yaml.safe_dump_all([config, deployment], sort_keys=False))
    # podman 4.3 resolves a secretKeyRef from a podman secret holding the Secret's `data` map as JSON.
    secret_file = work / "secret.json"
    secret_file.write_text(json.dumps(admin_secret(token)["data"]))
    engine.run("kube", "down", str(kube_file), check=False)  # a pod left by an interrupted run
    engine.run("secret", "rm", SECRET_NAME, check=False)
    engine.run("secret", "create", SECRET_NAME, str(secret_file))
    started = time.monotonic()
    played: list[Pod] = []
    try:
        engine.run("kube", "play", str(kube_file))
        name = deployment["metadata"]["name"]
        listed = engine.run("ps", "-a", "--filter", f"pod={name}-pod-0", "--format", "{{.Names}}").stdout.split()
        (container,) = [c for c in listed if not c.endswith("-infra")]

        def alive() -> None:
            state = engine.run("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container).stdout
            if not state.startswith("running"):
                logs = engine.run("logs", container, check=False)
                pytest.fail(f"the container stopped: {state}\n{(logs.stdout + logs.stderr)[-3000:]}")

        base = f"http://127.0.0.1:{port}"
        ready = wait_ready(base, 120, alive)
        played.append(Pod(engine, kube_file, base, port, token, container, deployment, time.monotonic() - started))
        print(f"\npod ready {played[0].ready_seconds:.1f} s after `kube play` ({ready:.1f} s of polling)")
        yield played[0]
    finally:
        if not played or played[0].running:
            engine.run("kube", "down", str(kube_file), check=False)
        engine.run("secret", "rm", SECRET_NAME, check=False)


def probe_paths(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {kind: container[kind]["httpGet"]["path"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}


def test_probe_paths_answer_on_the_mapped_port(pod: Pod) -> None:
    paths = probe_paths(pod.deployment)
    assert set(paths.values()) >= {"/health/live", "/health/ready"}
    for kind, path in paths.items():
        status, _ = request(pod.base + path)
        assert status == 200, f"{kind} {path}: {status}"


def test_both_models_predict(pod: Pod) -> None:
    status, body = request(pod.base + "/predict/heart", HEART_PATIENT)
    assert status == 200, body
    heart = json.loads(body)
    assert 0.0 <= heart["probability"] <= 1.0 and heart["prediction"] in {0, 1}
    status, body = request(pod.base + "/predict/digit", {"pixels": DIGIT_PIXELS})
    assert status == 200, body
    digit = json.loads(body)
    assert len(digit["probabilities"]) == 10 and 0 <= digit["digit"] <= 9
    # A client's mistake is a 4xx naming the field, in the container as anywhere.
    status, body = request(pod.base + "/predict/heart", {**HEART_PATIENT, "age": "old"})
    assert 400 <= status < 500 and b"age" in body


def test_runs_as_10001_on_a_read_only_root_with_a_writable_tmp(pod: Pod) -> None:
    status = pod.engine.run("exec", pod.container, "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == [str(APP_UID)] * 4, f"PID 1 runs as {uids}"
    root = pod.engine.run("exec", pod.container, "touch", "/app/written", check=False)
    assert root.returncode != 0 and "Read-only file system" in root.stderr
    scratch = pod.engine.run("exec", pod.container, "touch", "/tmp/written", check=False)
    assert scratch.returncode == 0, scratch.stderr
    assert (
        pod.engine.run("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", pod.container).stdout.strip() == "true"
    )
    # The metrics directory lives in the writable /tmp.
    assert pod.engine.run("exec", pod.container, "test", "-d", "/tmp/metrics", check=False).returncode == 0


def test_admin_token_from_the_secret(pod: Pod) -> None:
    status, body = request(pod.base + "/admin/reload", {}, {"authorization": f"Bearer {pod.token}"})
    assert status == 200, body
    assert {outcome["model"] for outcome in json.loads(body)["models"]} == {"heart", "digits"}
    status, _ = request(pod.base + "/admin/reload", {}, {"authorization": f"Bearer {pod.token}x"})
    assert status == 401
    status, _ = request(pod.base + "/admin/reload", {})
    assert status == 401


def test_metrics_answer(pod: Pod) -> None:
    status, body = request(pod.base + "/metrics")
    assert status == 200
    assert b"modelserve_predictions_total" in body and b"modelserve_ready" in body


class LoadGenerator:
    """Threads sending single heart predictions, one fresh connection each (so that "got a connection" is
    exact): a refused connection is the pod being gone; an error after connecting is a lost request."""

    def __init__(self, port: int, threads: int = 8) -> None:
        self.port, self.stop = port, threading.Event()
        self.down_at = float("inf")  # when `kube down` started: failures say when they had connected
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.body = json.dumps(HEART_PATIENT).encode()
        # What a Service does: it routes new connections to the pod only while the pod's readiness probe
        # passes. Without it, a client dialling the pod's port directly connects into the listen backlog in
        # the instant the server closes it (measured: one request in ~1,500, connected 2.3 s after SIGTERM,
        # got a broken pipe). Cleared by the prober below at the first failed readiness check.
        self.routable = threading.Event()
        self.routable.set()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]
        self.threads.append(threading.Thread(target=self._probe_readiness, daemon=True))

    def _probe_readiness(self) -> None:
        """The kubelet's readiness probe and the endpoints controller: every 0.2 s; the first failure removes
        the pod from the Service for good (it is going away)."""
        while not self.stop.is_set() and self.routable.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", "/health/ready")
                ready = connection.getresponse().status == 200
            except (OSError, http.client.HTTPException):
                ready = False
            finally:
                connection.close()
            if not ready:
                self.routable.clear()
                self._count("endpoint removed")
                return
            time.sleep(0.2)

    def _count(self, what: str, error: str | None = None) -> None:
        with self.lock:
            self.counts[what] += 1
            if error:
                self.errors.append(error)

    def _loop(self) -> None:
        while not self.stop.is_set():
            if not self.routable.is_set():  # the Service sends this pod no new connections
                time.sleep(0.02)
                continue
            # An answer takes milliseconds; 15 s without one is a request lost with the pod.
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                connection.connect()
            except OSError:
                self._count("refused")
                time.sleep(0.02)
                continue
            self._count("sent")
            connected = time.monotonic()
            try:
                connection.request("POST", "/predict/heart", self.body, {"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                self._count("answered" if response.status == 200 else f"status {response.status}")
            except (OSError, http.client.HTTPException) as error:
                self._count("failed", f"{error!r}, connected at {connected - self.down_at:+.2f} s")
            finally:
                connection.close()

    def __enter__(self) -> LoadGenerator:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=70)


def test_kube_down_under_load_answers_every_connected_request(pod: Pod) -> None:
    with LoadGenerator(pod.port) as load:
        time.sleep(2)
        before = load.counts["answered"]
        started = load.down_at = time.monotonic()
        # What the kubelet does: SIGTERM to the container, then the grace period. `podman kube down` alone
        # tears the pod's network down while the container is still draining (measured: every request
        # connected ~1 s after it began hung unanswered), so the container stops first, then the pod goes.
        grace = str(pod.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
        stop = pod.engine.run("stop", "--time", grace, pod.container, timeout=120, check=False)
        stopped = time.monotonic() - started
        down = pod.engine.run("kube", "down", str(pod.kube_file), timeout=120, check=False)
        pod.running = False
        time.sleep(1)
    counts = load.counts
    print(
        f"\nstop (SIGTERM, grace {grace} s) under load: {stopped:.1f} s; sent {counts['sent']},"
        f" answered {counts['answered']}"
        f" ({counts['answered'] - before} after SIGTERM), failed {counts['failed']}, refused {counts['refused']},"
        f" other {sorted((k, v) for k, v in counts.items() if k.startswith('status'))}"
    )
    assert stop.returncode == 0 and down.returncode == 0, stop.stderr + down.stderr
    assert before > 0, "no prediction was answered before the pod went down"
    assert counts["failed"] == 0, f"connected requests left unanswered: {load.errors[:5]}"
    assert counts["sent"] == sum(v for k, v in counts.items() if k not in {"sent", "refused", "endpoint removed"})
    assert counts["endpoint removed"] == 1, "readiness never failed: the pod was never taken out of the Service"
