"""Fixtures shared by every test package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both models trained with the small config into a fresh artifacts directory (once per session)."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    done = subprocess.run(
        [sys.executable, "-m", "training", "--small", "--artifacts-dir", str(artifacts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"small training run failed:\n{done.stdout}\n{done.stderr}"
    return artifacts


@pytest.fixture(scope="session")
def heart_version(small_artifacts: Path) -> Path:
    return small_artifacts / "heart" / (small_artifacts / "heart" / "CURRENT").read_text().strip()


@pytest.fixture(scope="session")
def digits_version(small_artifacts: Path) -> Path:
    return small_artifacts / "digits" / (small_artifacts / "digits" / "CURRENT").read_text().strip()


@pytest.fixture(scope="session")
def heart_reference(heart_version: Path) -> dict[str, Any]:
    return json.loads((heart_version / "reference.json").read_text())


@pytest.fixture(scope="session")
def digits_reference(digits_version: Path) -> dict[str, Any]:
    return json.loads((digits_version / "reference.json").read_text())
