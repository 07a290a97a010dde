"""Find, read and verify one model version on disk; nothing here knows about ONNX or HTTP.

A version is trusted only after every file its manifest lists matches the recorded size and sha256.
`model.onnx`, `reference.json` and `background.json` are read into memory once and checked *as read*, so
the bytes the service loads are the bytes it verified (no window in which the file could change in between).
Other files (weights, the pickled preprocessing, the report) are only hashed: the service never
opens them otherwise, and in particular never unpickles anything.

Paths are distrusted: `CURRENT` and pinned versions must be plain directory names, and neither the
version directory nor any listed file may be a symlink or resolve outside the artifacts directory.
Every failure raises ArtifactError naming the model, the version and the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec

from service.contract import (
    BACKGROUND_FILE,
    CURRENT_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    REFERENCE_FILE,
    REQUIRED_FILES,
    REQUIRED_MANIFEST_KEYS,
    SCHEMA_VERSION,
    FileEntry,
    Manifest,
    is_safe_version_name,
    sha256_file,
)

# Files read into memory (and hashed as read) rather than only hashed on disk.
LOADED_FILES = (ONNX_FILE, REFERENCE_FILE, BACKGROUND_FILE)
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is tens of kB; refuse to parse something absurd


class ArtifactError(Exception):
    """A model version the service refuses to load; `str()` names model, version and file."""

    def __init__(self, model: str, version: str | None, file: str | None, reason: str) -> None:
        self.model, self.version, self.file, self.reason = model, version, file, reason
        where = f"model {model!r}, version {version or '?'!r}"
        if file:
            where += f", file {file!r}"
        super().__init__(f"refusing {where}: {reason}")


@dataclass(frozen=True)
class Artifact:
    """A verified version: its manifest and the bytes of the files the service uses."""

    name: str
    version: str
    path: Path
    manifest: Manifest
    onnx_bytes: bytes
    reference: dict[str, Any]
    background: bytes | None = None  # background.json, where the version has one (explanations)


def resolve_version(artifacts_dir: Path, model: str, pinned: str | None = None) -> str:
    """The version to load: the pinned one, else the name in `<model>/CURRENT`."""
    if pinned is not None:
        if not is_safe_version_name(pinned):
            raise ArtifactError(model, pinned, None, "the pinned version is not a plain directory name")
        return pinned
    current = artifacts_dir / model / CURRENT_FILE
    try:
        if current.is_symlink():
            raise ArtifactError(model, None, CURRENT_FILE, "CURRENT is a symlink; it must be a regular file")
        # A FIFO (or a device) would block the read for ever: start-up, or every reload, would hang.
        if current.exists() and not current.is_file():
            raise ArtifactError(model, None, CURRENT_FILE, "CURRENT is not a regular file")
        name = current.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ArtifactError(model, None, str(current), "no CURRENT file: train a model first") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ArtifactError(model, None, str(current), f"cannot read CURRENT: {error}") from None
    if not is_safe_version_name(name):
        raise ArtifactError(
            model, name[:80], CURRENT_FILE, "CURRENT does not name a plain version directory (no '/', '..')"
        )
    return name


def _version_dir(artifacts_dir: Path, model: str, version: str) -> Path:
    root = artifacts_dir.resolve()  # the artifacts dir itself may be a mount or a symlink
    path = root / model / version
    if path.is_symlink():
        raise ArtifactError(model, version, str(path), "the version directory is a symlink")
    if not path.is_dir():
        raise ArtifactError(model, version, str(path), "the version directory does not exist")
    if not path.resolve().is_relative_to(root):
        raise ArtifactError(model, version, str(path), "the version directory lies outside the artifacts dir")
    return path


def _listed_path(model: str, version: str, version_dir: Path, name: str) -> Path:
    """The on-disk path of a file the manifest lists, refusing names that could escape the version."""
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts or "\\" in name:
        raise ArtifactError(model, version, name, "the manifest lists a path outside the version directory")
    path = version_dir.joinpath(*relative.parts)
    if path.resolve() != version_dir.resolve().joinpath(*relative.parts):
        raise ArtifactError(model, version, name, "the file is (or lies under) a symlink")
    return path


def _read_manifest(model: str, version: str, version_dir: Path) -> Manifest:
    path = version_dir / MANIFEST_FILE
    try:
        if path.is_symlink():
            raise ArtifactError(model, version, MANIFEST_FILE, "the manifest is a symlink")
        if path.exists() and not path.is_file():  # a FIFO would block the read (listed files: _verify_file)
            raise ArtifactError(model, version, MANIFEST_FILE, "the manifest is not a regular file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ArtifactError(model, version, MANIFEST_FILE, "the manifest is implausibly large")
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ArtifactError(model, version, MANIFEST_FILE, "the manifest is missing") from None
    except (OSError, ValueError) as error:
        raise ArtifactError(model, version, MANIFEST_FILE, f"unreadable manifest: {error}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(model, version, MANIFEST_FILE, "the manifest is not a JSON object")
    return _typed_manifest(model, version, manifest)


def _typed_manifest(model: str, version: str, manifest: dict[str, Any]) -> Manifest:
    """The contract's Manifest, or an ArtifactError naming what is missing or out of bounds."""
    schema = manifest.get("schema_version")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise ArtifactError(model, version, MANIFEST_FILE, f"schema_version {schema!r} is not an integer")
    if schema > SCHEMA_VERSION:
        raise ArtifactError(
            model,
            version,
            MANIFEST_FILE,
            f"schema_version {schema} is newer than this service understands ({SCHEMA_VERSION}): "
            "upgrade the service before deploying this artifact",
        )
    if schema < SCHEMA_VERSION:
        raise ArtifactError(
            model, version, MANIFEST_FILE, f"schema_version {schema} is older than supported ({SCHEMA_VERSION})"
        )
    missing = [key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ArtifactError(model, version, MANIFEST_FILE, f"the manifest lacks {', '.join(missing)}")
    if manifest["name"] != model or manifest["version"] != version:
        raise ArtifactError(
            model,
            version,
            MANIFEST_FILE,
            f"the manifest describes {manifest['name']!r} version {manifest['version']!r}",
        )
    for name in REQUIRED_FILES:
        if not isinstance(manifest["files"], dict) or name not in manifest["files"]:
            raise ArtifactError(model, version, name, "a required file is not listed in the manifest")
    try:
        return msgspec.convert(manifest, Manifest)
    except msgspec.ValidationError as error:
        raise ArtifactError(model, version, MANIFEST_FILE, f"the manifest does not fit the contract: {error}") from None


def _verify_file(model: str, version: str, name: str, path: Path, entry: FileEntry) -> bytes | None:
    """Check one listed file's size and sha256; return its bytes if it is one the service loads."""
    try:
        if not path.is_file():
            raise ArtifactError(model, version, name, "the file is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise ArtifactError(model, version, name, f"size is {size} bytes but the manifest says {entry.bytes}")
        if name in LOADED_FILES:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
        else:
            data, digest = None, sha256_file(path)
    except OSError as error:
        raise ArtifactError(model, version, name, f"cannot read the file: {error}") from None
    if digest != entry.sha256:
        raise ArtifactError(
            model, version, name, f"sha256 is {digest} but the manifest says {entry.sha256} (corrupt or altered)"
        )
    return data


def load_artifact(artifacts_dir: Path, model: str, pinned: str | None = None) -> Artifact:
    """Locate, verify and read one model version; raise ArtifactError if anything is off."""
    version = resolve_version(artifacts_dir, model, pinned)
    version_dir = _version_dir(artifacts_dir, model, version)
    manifest = _read_manifest(model, version, version_dir)
    loaded: dict[str, bytes] = {}
    for name, entry in manifest.files.items():
        data = _verify_file(model, version, name, _listed_path(model, version, version_dir, name), entry)
        if data is not None:
            loaded[name] = data
    try:
        reference = json.loads(loaded[REFERENCE_FILE])
    except ValueError as error:
        raise ArtifactError(model, version, REFERENCE_FILE, f"not valid JSON: {error}") from None
    if not (
        isinstance(reference, dict)
        and isinstance(reference.get("inputs"), list)
        and isinstance(reference.get("probabilities"), list)
        and len(reference["inputs"]) == len(reference["probabilities"]) > 0
    ):
        raise ArtifactError(
            model, version, REFERENCE_FILE, "expected non-empty, equally long 'inputs' and 'probabilities'"
        )
    return Artifact(
        name=model,
        version=version,
        path=version_dir,
        manifest=manifest,
        onnx_bytes=loaded[ONNX_FILE],
        reference=reference,
        background=loaded.get(BACKGROUND_FILE),
    )


def read_listed_file(artifacts_dir: Path, model: str, version: str, manifest: Manifest, name: str) -> bytes:
    """The bytes of one file the manifest lists (e.g. a model card's plot), read once and checked *as
    read* against its sha256, so the bytes returned are the bytes verified. ArtifactError if the name is
    not listed, escapes the version, or the file changed since it was written."""
    entry = manifest.files.get(name)
    if entry is None:
        raise ArtifactError(model, version, name[:200], "the manifest does not list this file")
    path = _listed_path(model, version, _version_dir(artifacts_dir, model, version), name)
    try:
        if not path.is_file():
            raise ArtifactError(model, version, name, "the file is missing")
        data = path.read_bytes()
    except OSError as error:
        raise ArtifactError(model, version, name, f"cannot read the file: {error}") from None
    if len(data) != entry.bytes or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ArtifactError(model, version, name, "the file does not match its sha256 in the manifest (altered)")
    return data
