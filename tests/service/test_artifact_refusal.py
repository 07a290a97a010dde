"""A version is served only if every file matches its manifest; every refusal names model, version, file."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.artifact import ArtifactError, load_artifact
from service.contract import file_entry
from service.dataplane import DataPlane
from service.settings import Settings, SettingsError


@pytest.fixture
def artifacts(small_artifacts: Path, tmp_path: Path) -> Path:
    """A private copy of the small artifacts that a test may damage."""
    copy = tmp_path / "artifacts"
    shutil.copytree(small_artifacts, copy, symlinks=True)
    return copy


def version_dir(artifacts: Path, model: str = "heart") -> Path:
    return artifacts / model / (artifacts / model / "CURRENT").read_text().strip()


def edit_manifest(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    change(manifest)
    manifest_path.write_text(json.dumps(manifest))


def refusal(artifacts: Path, model: str = "heart", pinned: str | None = None) -> ArtifactError:
    with pytest.raises(ArtifactError) as caught:
        load_artifact(artifacts, model, pinned)
    return caught.value


def test_intact_copy_loads(artifacts: Path) -> None:
    artifact = load_artifact(artifacts, "heart")
    assert artifact.version == version_dir(artifacts).name
    assert artifact.onnx_bytes == (version_dir(artifacts) / "model.onnx").read_bytes()


def test_flipped_byte_in_the_model_is_refused(artifacts: Path) -> None:
    onnx = version_dir(artifacts) / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx.write_bytes(bytes(data))
    error = refusal(artifacts)
    assert (error.model, error.version, error.file) == ("heart", version_dir(artifacts).name, "model.onnx")
    assert "sha256" in str(error) and "model.onnx" in str(error) and error.version in str(error)


@pytest.mark.parametrize("name", ["weights.pt", "preprocess.joblib", "reference.json", "model.onnx"])
def test_missing_file_is_refused(artifacts: Path, name: str) -> None:
    (version_dir(artifacts) / name).unlink()
    error = refusal(artifacts)
    assert error.file == name
    assert "missing" in str(error)


def test_file_not_listed_in_the_manifest_is_refused(artifacts: Path) -> None:
    edit_manifest(version_dir(artifacts), lambda m: m["files"].pop("weights.pt"))
    assert refusal(artifacts).file == "weights.pt"


def test_wrong_checksum_in_the_manifest_is_refused(artifacts: Path) -> None:
    edit_manifest(version_dir(artifacts), lambda m: m["files"]["preprocess.joblib"].update(sha256="0" * 64))
    error = refusal(artifacts)
    assert error.file == "preprocess.joblib"
    assert "0" * 64 in str(error)


def test_wrong_size_in_the_manifest_is_refused(artifacts: Path) -> None:
    edit_manifest(version_dir(artifacts), lambda m: m["files"]["model.onnx"].update(bytes=1))
    error = refusal(artifacts)
    assert error.file == "model.onnx"
    assert "size" in str(error)


def test_newer_schema_version_is_refused(artifacts: Path) -> None:
    edit_manifest(version_dir(artifacts), lambda m: m.update(schema_version=m["schema_version"] + 1))
    error = refusal(artifacts)
    assert error.file == "manifest.json"
    assert "newer" in str(error)


def test_unparsable_manifest_is_refused(artifacts: Path) -> None:
    (version_dir(artifacts) / "manifest.json").write_text("{not json")
    assert refusal(artifacts).file == "manifest.json"


def test_manifest_for_another_version_is_refused(artifacts: Path) -> None:
    edit_manifest(version_dir(artifacts), lambda m: m.update(version="something-else"))
    assert "something-else" in str(refusal(artifacts))


def test_current_naming_a_missing_version_is_refused(artifacts: Path) -> None:
    (artifacts / "heart" / "CURRENT").write_text("20990101T000000Z-deadbeef\n")
    error = refusal(artifacts)
    assert error.version == "20990101T000000Z-deadbeef"
    assert "does not exist" in str(error)


@pytest.mark.parametrize("current", ["../digits/x", "..", "/etc", ".hidden", "a/b", ""])
def test_current_that_could_escape_is_refused(artifacts: Path, current: str) -> None:
    (artifacts / "heart" / "CURRENT").write_text(current + "\n")
    error = refusal(artifacts)
    assert error.file == "CURRENT"


def test_current_escaping_to_another_models_version_is_refused(artifacts: Path) -> None:
    other = version_dir(artifacts, "digits").name
    (artifacts / "heart" / "CURRENT").write_text(f"../digits/{other}\n")
    error = refusal(artifacts)
    assert error.file == "CURRENT"
    assert "plain version" in str(error)


def test_missing_current_is_refused(artifacts: Path) -> None:
    (artifacts / "heart" / "CURRENT").unlink()
    assert "CURRENT" in str(refusal(artifacts))


def test_symlinked_version_directory_is_refused(artifacts: Path, tmp_path: Path) -> None:
    real = version_dir(artifacts)
    outside = tmp_path / "elsewhere"
    shutil.move(real, outside)
    real.symlink_to(outside, target_is_directory=True)
    assert "symlink" in str(refusal(artifacts))


def test_symlinked_file_is_refused(artifacts: Path, tmp_path: Path) -> None:
    onnx = version_dir(artifacts) / "model.onnx"
    outside = tmp_path / "model.onnx"
    shutil.copy(onnx, outside)
    onnx.unlink()
    onnx.symlink_to(outside)
    error = refusal(artifacts)
    assert error.file == "model.onnx"
    assert "symlink" in str(error)


@pytest.mark.parametrize("name", ["../../digits/CURRENT", "/etc/passwd", "report/../../x"])
def test_manifest_listing_a_path_outside_the_version_is_refused(artifacts: Path, name: str) -> None:
    edit_manifest(version_dir(artifacts), lambda m: m["files"].update({name: {"sha256": "0" * 64, "bytes": 1}}))
    error = refusal(artifacts)
    assert error.file == name
    assert "outside" in str(error)


def test_pinned_version_is_loaded_instead_of_current(artifacts: Path) -> None:
    pinned = version_dir(artifacts).name
    (artifacts / "heart" / "CURRENT").write_text("does-not-exist\n")
    assert load_artifact(artifacts, "heart", pinned).version == pinned


def test_pinned_version_must_be_a_plain_name(small_artifacts: Path) -> None:
    with pytest.raises(SettingsError, match="SERVICE_HEART_VERSION"):
        Settings.from_env({"SERVICE_ARTIFACTS_DIR": str(small_artifacts), "SERVICE_HEART_VERSION": "../digits/x"})


def start(artifacts: Path) -> None:
    """Load every model as the app's start-up does (verify, load, self-check)."""
    asyncio.run(DataPlane(Settings(artifacts_dir=artifacts)).load_all())


def _rewrite_reference(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change reference.json and record its new checksum, as a (wrong) training run would have."""
    reference_path = path / "reference.json"
    reference = json.loads(reference_path.read_text())
    change(reference)
    reference_path.write_text(json.dumps(reference))
    edit_manifest(path, lambda m: m["files"].update({"reference.json": file_entry(reference_path)}))


def test_self_check_refuses_a_model_that_disagrees_with_its_reference(artifacts: Path) -> None:
    _rewrite_reference(
        version_dir(artifacts), lambda r: r["probabilities"].__setitem__(5, r["probabilities"][5] + 0.01)
    )
    with pytest.raises(ArtifactError) as caught:
        start(artifacts)
    error = caught.value
    assert (error.model, error.file) == ("heart", "reference.json")
    assert "row 5" in str(error)


def test_self_check_refuses_reference_inputs_the_service_rejects(artifacts: Path) -> None:
    _rewrite_reference(version_dir(artifacts), lambda r: r["inputs"][0].update(age=500))
    with pytest.raises(ArtifactError, match=r"rejects a reference input \(age"):
        start(artifacts)


def test_manifest_inputs_that_differ_from_the_schema_are_refused(artifacts: Path) -> None:
    edit_manifest(version_dir(artifacts), lambda m: m["inputs"]["features"][0].update(maximum=150))
    with pytest.raises(ArtifactError, match=r"inputs\.features") as caught:
        start(artifacts)
    assert caught.value.file == "manifest.json"


def test_an_onnx_file_that_is_not_a_graph_is_refused(artifacts: Path) -> None:
    path = version_dir(artifacts, "digits")
    (path / "model.onnx").write_bytes(b"not a graph")
    edit_manifest(path, lambda m: m["files"].update({"model.onnx": file_entry(path / "model.onnx")}))
    with pytest.raises(ArtifactError) as caught:
        start(artifacts)
    assert (caught.value.model, caught.value.file) == ("digits", "model.onnx")


def test_swapped_models_fail_the_input_check(artifacts: Path) -> None:
    """heart's graph under digits' manifest: the ONNX input is not the one the digits schema produces."""
    digits, heart = version_dir(artifacts, "digits"), version_dir(artifacts, "heart")
    shutil.copy(heart / "model.onnx", digits / "model.onnx")
    edit_manifest(digits, lambda m: m["files"].update({"model.onnx": file_entry(digits / "model.onnx")}))
    with pytest.raises(ArtifactError, match="graph inputs") as caught:
        start(artifacts)
    assert caught.value.file == "model.onnx"


def test_app_start_up_fails_with_the_message(artifacts: Path) -> None:
    """Fail fast: the lifespan raises, so a server exits before it listens (see test_serve_process)."""
    (version_dir(artifacts) / "weights.pt").write_bytes(b"tampered")
    app = create_app(Settings(artifacts_dir=artifacts))
    with pytest.raises(BaseExceptionGroup) as caught, TestClient(app=app):  # the test client's task group
        pass
    assert caught.group_contains(ArtifactError, match=r"model 'heart'.*weights\.pt")
