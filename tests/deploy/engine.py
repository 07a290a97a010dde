"""Helpers for the tests that build and run the real image: the container engine deploy/image/engine.sh
picks (podman, or docker with a daemon), the image `make image` builds, HTTP against a mapped port.

No engine is a failure, never a skip: these tests exist to prove the image works.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.deploy.manifests import ROOT

IMAGE_SCRIPTS = ROOT / "deploy" / "image"
APP_UID = 10001
HEART_PATIENT = {
    "age": 80, "sex": 0, "cp": 1, "trestbps": 124, "chol": 300, "fbs": 1, "restecg": 2,
    "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": "fixed",
}  # fmt: skip
DIGIT_PIXELS = [
    0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
    0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
]  # fmt: skip


@dataclass(frozen=True)
class Engine:
    """The engine's command and the environment it needs (CONTAINERS_CONF for podman)."""

    name: str
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [self.name, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
        if check:
            assert done.returncode == 0, f"{self.name} {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
        return done


def find_engine() -> Engine:
    """The engine deploy/image/engine.sh picks, with its environment; fails the test when there is none."""
    probe = subprocess.run(
        ["bash", "-c", f'. {IMAGE_SCRIPTS / "engine.sh"} && echo "$ENGINE" && echo "${{CONTAINERS_CONF:-}}"'],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail(f"no container engine on this machine, the image cannot be tested:\n{probe.stderr}")
    name, conf = probe.stdout.splitlines()[:2]
    env = dict(os.environ)
    if conf:
        env["CONTAINERS_CONF"] = conf
    return Engine(name, env)


@dataclass(frozen=True)
class BuiltImage:
    name: str
    seconds: float
    size_mb: float
    log: str


def build_image(engine: Engine) -> BuiltImage:
    """`make image`'s script (layer cache and base image reused when present); fails on a failed build."""
    started = time.monotonic()
    done = subprocess.run(
        [str(IMAGE_SCRIPTS / "build.sh")], env=engine.env, capture_output=True, text=True, check=False, timeout=1500
    )
    assert done.returncode == 0, f"image build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    name = done.stdout.strip().splitlines()[-1].split()[1]  # "built modelserve:0.1.0 in N s: M MB"
    size = int(engine.run("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())
    return BuiltImage(name, time.monotonic() - started, size / 1e6, done.stdout)


def existing_image(engine: Engine, name: str) -> BuiltImage:
    """An image built before (fails when the engine has none by that name)."""
    size = engine.run("image", "inspect", "--format", "{{.Size}}", name, check=False)
    assert size.returncode == 0, f"MODELSERVE_IMAGE={name}: no such image ({size.stderr.strip()})"
    return BuiltImage(name, 0.0, int(size.stdout.strip()) / 1e6, "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(
    url: str, body: object | None = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    """(status, body) of one request; a non-2xx answer is a result, not an exception."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(base: str, seconds: float, alive: Callable[[], None] = lambda: None) -> float:
    """Seconds until /health/ready answers 200; `alive` raises if the thing being waited for died."""
    started = time.monotonic()
    while True:
        alive()
        try:
            if request(base + "/health/ready", timeout=2)[0] == 200:
                return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        assert time.monotonic() - started < seconds, f"not ready within {seconds} s"
        time.sleep(0.25)
