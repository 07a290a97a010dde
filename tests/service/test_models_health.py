"""GET /models, /models/{name}, /health/live and /health/ready."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings


def test_models_lists_both_with_their_verified_checksums(
    client: TestClient, heart_version: Path, digits_version: Path
) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    models = {model["name"]: model for model in response.json()["models"]}
    assert set(models) == {"heart", "digits"}
    for name, version_dir in (("heart", heart_version), ("digits", digits_version)):
        manifest = json.loads((version_dir / "manifest.json").read_text())
        model = models[name]
        assert model["version"] == version_dir.name
        assert model["sha256"] == manifest["files"]["model.onnx"]["sha256"]
        assert model["threshold"] == manifest["threshold"]["value"]
        assert model["inputs"] == manifest["inputs"]
        assert model["labels"] == manifest["labels"]
        assert model["loaded_at"].endswith("Z")
        assert model == client.get(f"/models/{name}").json()


def test_model_metrics_are_headlines_not_the_training_history(client: TestClient, heart_version: Path) -> None:
    manifest = json.loads((heart_version / "manifest.json").read_text())
    model = client.get("/models/heart").json()
    assert model["metrics"]["cv"] == manifest["metrics"]["cv"]
    assert model["metrics"]["test"]["roc_auc"] == manifest["metrics"]["test"]["roc_auc"]
    assert "confusion_matrix" not in model["metrics"]["test"]
    assert "training" not in model and "config" not in model
    assert len(client.get("/models").content) < 20_000  # the manifest with its histories is far larger


def test_health_routes(client: TestClient) -> None:
    live = client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "live"})
    ready = client.get("/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_not_ready_before_start_up_and_after_shutdown(settings: Settings, expect_error: Any) -> None:
    """Without the lifespan (an ASGI host that skips it) the app is live but not ready, and its model
    routes say so with a 503 instead of failing; after shutdown it is not ready again."""
    app = create_app(settings)
    bare = TestClient(app=app)  # not entered: no lifespan
    assert bare.get("/health/live").status_code == 200
    expect_error(bare.get("/health/ready"), 503, "not_ready")
    expect_error(bare.post("/predict/heart", json={"age": 50, "sex": 1}), 503, "not_ready")
    expect_error(bare.get("/models"), 503, "not_ready")
    with TestClient(app=app) as started:
        assert started.get("/health/ready").status_code == 200
    expect_error(TestClient(app=app).get("/health/ready"), 503, "not_ready")
