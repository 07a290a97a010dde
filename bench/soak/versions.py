"""A private artifacts directory holding two real versions of each model, so reloads really swap.

The copy holds each model's current version from the source directory, then `python -m training
--small` trains a second version of each model into it (another seed, so different weights and a
different version name). Both are published exactly as training publishes; the source directory is
only read. A copied version could not simply be renamed: the service refuses a version whose
manifest names another version.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.payloads import current_version_dir
from service.contract import CURRENT_FILE, MODEL_NAMES
from training.bundle import set_current

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class VersionPair:
    """A model's two versions: `original` (copied from the source) and `other` (trained here)."""

    model: str
    original: str
    other: str

    def after(self, version: str) -> str:
        return self.other if version == self.original else self.original


def copy_current(source: Path, destination: Path) -> dict[str, str]:
    """Copy each model's CURRENT and the version it names; {model: version}."""
    copied = {}
    for model in MODEL_NAMES:
        version_dir = current_version_dir(source, model)
        (destination / model).mkdir(parents=True, exist_ok=True)
        shutil.copytree(version_dir, destination / model / version_dir.name, symlinks=True)
        shutil.copy2(source / model / CURRENT_FILE, destination / model / CURRENT_FILE)
        copied[model] = version_dir.name
    return copied


def train_second_versions(destination: Path, log_path: Path, seed: int) -> None:
    """`python -m training --small` into `destination` (it publishes and moves CURRENT)."""
    command = [sys.executable, "-m", "training", "--small", "--no-report", "--seed", str(seed)]
    with log_path.open("wb") as log:
        done = subprocess.run(
            [*command, "--artifacts-dir", str(destination)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=900,
        )
    if done.returncode != 0:
        raise RuntimeError(f"training a second version failed (exit {done.returncode}); see {log_path}")


def prepare_versions(source: Path, destination: Path, log_path: Path, seed: int = 1) -> dict[str, VersionPair]:
    """Two versions of each model in `destination`, with CURRENT back on the copied (original) one."""
    originals = copy_current(source, destination)
    train_second_versions(destination, log_path, seed)
    pairs = {}
    for model, original in originals.items():
        other = current_version_dir(destination, model).name
        if other == original:
            raise RuntimeError(f"training published no new {model} version")
        set_current(destination / model, original)
        pairs[model] = VersionPair(model, original, other)
    return pairs


def flip(artifacts_dir: Path, pairs: dict[str, VersionPair], current: dict[str, str]) -> dict[str, str]:
    """Point every model's CURRENT at its other version (atomically, as training does); the new targets."""
    target = {model: pair.after(current[model]) for model, pair in pairs.items()}
    for model, version in target.items():
        set_current(artifacts_dir / model, version)
    return target
