"""Hot reload: a new version is verified like at start-up and swapped in; a bad one changes nothing."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.processes import ROOT, start, stop, total, wait_ready

TOKEN = "a-token-long-enough-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATIENT = {"age": 61, "sex": 1, "cp": 4}


def publish(artifacts: Path, model: str, version: str) -> None:
    """Point CURRENT at `version` as training does: write a temp file, then rename over it."""
    temporary = artifacts / model / ".CURRENT.tmp"
    temporary.write_text(version + "\n")
    temporary.replace(artifacts / model / "CURRENT")


@pytest.fixture(scope="module")
def two_versions(small_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A private copy of the artifacts with two heart versions: the original and one trained again."""
    artifacts = tmp_path_factory.mktemp("reload") / "artifacts"
    shutil.copytree(small_artifacts, artifacts)
    old = (artifacts / "heart" / "CURRENT").read_text().strip()
    time.sleep(1.1)  # version names hold the time in seconds
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--small",
            "--no-report",
            "--models",
            "heart",
            "--artifacts-dir",
            str(artifacts),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    new = (artifacts / "heart" / "CURRENT").read_text().strip()
    assert new != old
    publish(artifacts, "heart", old)
    return {"dir": artifacts, "old": old, "new": new}


@pytest.fixture
def admin(two_versions: dict[str, Any]) -> Iterator[TestClient]:
    publish(two_versions["dir"], "heart", two_versions["old"])
    settings = Settings(artifacts_dir=two_versions["dir"], admin_token=TOKEN, reload_interval=0)
    with TestClient(app=create_app(settings)) as client:
        yield client


def test_no_token_no_route(small_artifacts: Path) -> None:
    with TestClient(app=create_app(Settings(artifacts_dir=small_artifacts))) as client:
        assert client.post("/admin/reload", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_wrong_or_missing_token_is_401(admin: TestClient, headers: dict[str, str], expect_error: Any) -> None:
    response = admin.post("/admin/reload", headers=headers)
    expect_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_reload_to_a_new_version(admin: TestClient, two_versions: dict[str, Any]) -> None:
    old, new = two_versions["old"], two_versions["new"]
    assert admin.post("/predict/heart", json=PATIENT).json()["version"] == old
    unchanged = admin.post("/admin/reload", headers=AUTH)
    assert unchanged.status_code == 200
    assert {m["model"]: m["result"] for m in unchanged.json()["models"]} == {
        "heart": "unchanged",
        "digits": "unchanged",
    }
    before = admin.get("/metrics").text

    publish(two_versions["dir"], "heart", new)
    response = admin.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200, response.text
    heart = next(m for m in response.json()["models"] if m["model"] == "heart")
    assert heart["result"] == "reloaded" and heart["previous"] == old and heart["version"] == new
    assert admin.post("/predict/heart", json=PATIENT).json()["version"] == new
    assert admin.get("/models/heart").json()["version"] == new
    after = admin.get("/metrics").text
    assert (
        total(after, "modelserve_reloads_total", model="heart", result="success")
        - total(before, "modelserve_reloads_total", model="heart", result="success")
        == 1
    )
    assert total(after, "modelserve_model_info", model="heart", version=new) == 1
    assert total(after, "modelserve_model_info", model="heart", version=old) == 0


def test_a_corrupted_version_is_refused_and_the_old_one_keeps_serving(
    admin: TestClient, two_versions: dict[str, Any], expect_error: Any
) -> None:
    artifacts, old, new = two_versions["dir"], two_versions["old"], two_versions["new"]
    publish(artifacts, "heart", new)
    assert admin.post("/admin/reload", headers=AUTH).status_code == 200  # now serving `new`
    before = admin.get("/metrics").text
    onnx = artifacts / "heart" / old / "model.onnx"
    original = onnx.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    onnx.write_bytes(bytes(flipped))
    try:
        publish(artifacts, "heart", old)
        response = admin.post("/admin/reload", headers=AUTH)
        error = expect_error(response, 409, "reload_failed", field="heart")
        reason = error["fields"][0]["reason"]
        assert old in reason and "model.onnx" in reason and f"still serving {new}" in reason
        assert admin.post("/predict/heart", json=PATIENT).json()["version"] == new
        assert admin.get("/health/ready").status_code == 200
        after = admin.get("/metrics").text
        failures = "modelserve_reloads_total"
        assert (
            total(after, failures, model="heart", result="failure")
            - total(before, failures, model="heart", result="failure")
            == 1
        )
    finally:
        onnx.write_bytes(original)


def test_requests_in_flight_during_a_reload_all_succeed(two_versions: dict[str, Any]) -> None:
    artifacts, old, new = two_versions["dir"], two_versions["old"], two_versions["new"]
    publish(artifacts, "heart", old)
    process, url = start(artifacts, SERVICE_ADMIN_TOKEN=TOKEN, SERVICE_RELOAD_INTERVAL="0")
    try:
        wait_ready(process, url)

        async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
                requests = [client.post("/predict/heart", json=PATIENT) for _ in range(300)]
                batches = [client.post("/predict/heart/batch", json={"instances": [PATIENT] * 500}) for _ in range(10)]
                publish(artifacts, "heart", new)
                reload = client.post("/admin/reload", headers=AUTH)
                *answers, reloaded = await asyncio.gather(*requests[:150], *batches, *requests[150:], reload)
                return answers, reloaded

        answers, reloaded = asyncio.run(scenario())
        assert reloaded.status_code == 200, reloaded.text
        assert [r.status_code for r in answers] == [200] * len(answers)
        versions = {r.json()["version"] for r in answers}
        assert versions <= {old, new}
        assert httpx.post(f"{url}/predict/heart", json=PATIENT).json()["version"] == new
    finally:
        stop(process)


def test_every_worker_follows_current(two_versions: dict[str, Any], tmp_path: Path) -> None:
    artifacts, old, new = two_versions["dir"], two_versions["old"], two_versions["new"]
    publish(artifacts, "heart", old)
    metrics_dir = tmp_path / "metrics"
    process, url = start(
        artifacts, SERVICE_WORKERS="2", SERVICE_RELOAD_INTERVAL="0.2", SERVICE_METRICS_DIR=str(metrics_dir)
    )
    try:
        wait_ready(process, url)  # one worker is ready; the other may still be loading
        deadline = time.monotonic() + 60
        while len(list(metrics_dir.glob("gauge_livemax_*.db"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # each worker writes model_info once it has loaded `old`
        assert len(list(metrics_dir.glob("gauge_livemax_*.db"))) == 2
        publish(artifacts, "heart", new)
        # Each worker counts its own reload, so 2 successes in one scrape means both moved.
        deadline, exposition = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            exposition = httpx.get(f"{url}/metrics", timeout=10).text
            if total(exposition, "modelserve_reloads_total", model="heart", result="success") >= 2:
                break
            time.sleep(0.1)
        assert total(exposition, "modelserve_reloads_total", model="heart", result="success") == 2, exposition
        assert total(exposition, "modelserve_model_info", model="heart", version=new) == 1
        assert total(exposition, "modelserve_model_info", model="heart", version=old) == 0
        for _ in range(40):  # new connections: whichever worker answers serves the new version
            answer = httpx.post(f"{url}/predict/heart", json=PATIENT, timeout=10)
            assert answer.status_code == 200
            assert answer.json()["version"] == new
    finally:
        stop(process)
