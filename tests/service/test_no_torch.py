"""The service never imports torch, joblib or the training code (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ["torch", "joblib", "training", "sklearn", "pandas"]


def test_importing_and_starting_the_app_loads_no_training_stack(small_artifacts: Path) -> None:
    code = f"""
import json, sys
from litestar.testing import TestClient
from service.app import create_app
from service.settings import Settings
with TestClient(app=create_app(Settings(artifacts_dir={str(small_artifacts)!r}))) as client:
    assert client.post("/predict/heart", json={{"age": 50, "sex": 1}}).status_code == 200
print(json.dumps([name for name in {FORBIDDEN!r} if name in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
