"""What `python -m training` publishes: the artifact contract, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from service.contract import (
    CURRENT_FILE,
    HEART_EXAMPLE,
    HEART_FEATURE_NAMES,
    MANIFEST_FILE,
    REQUIRED_FILES,
    REQUIRED_MANIFEST_KEYS,
    SCHEMA_VERSION,
    Manifest,
    sha256_file,
)
from training import build as build_module
from training.__main__ import main
from training.config import RunConfig, small
from training.data import heart_matrix, load_cleveland
from training.export import ExportParityError
from training.pipeline import run
from training.preprocess import stratified_split

ROOT = Path(__file__).resolve().parents[2]


def manifest_of(version_dir: Path) -> dict:
    return json.loads((version_dir / MANIFEST_FILE).read_text())


@pytest.mark.parametrize("model", ["heart", "digits"])
def test_manifest_lists_every_field_and_every_file_with_its_checksum(small_artifacts: Path, model: str) -> None:
    version = (small_artifacts / model / CURRENT_FILE).read_text().strip()
    version_dir = small_artifacts / model / version
    manifest = manifest_of(version_dir)
    assert set(REQUIRED_MANIFEST_KEYS) <= set(manifest)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["name"] == model and manifest["version"] == version
    assert len(manifest["data"]["sha256"]) == 64 and manifest["libraries"]["torch"].startswith("2.13.0")
    on_disk = {p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {MANIFEST_FILE}
    assert set(REQUIRED_FILES) <= set(manifest["files"])
    assert any(name.startswith("report/") and name.endswith(".png") for name in manifest["files"])
    assert "report/README.md" in manifest["files"]
    for name, entry in manifest["files"].items():
        assert entry == {"sha256": sha256_file(version_dir / name), "bytes": (version_dir / name).stat().st_size}
    assert not list((small_artifacts / model).glob(".staging-*"))


@pytest.mark.parametrize("model", ["heart", "digits"])
def test_the_written_manifest_decodes_into_the_contracts_manifest(small_artifacts: Path, model: str) -> None:
    version_dir = small_artifacts / model / (small_artifacts / model / CURRENT_FILE).read_text().strip()
    raw = (version_dir / MANIFEST_FILE).read_bytes()
    manifest = msgspec.json.decode(raw, type=Manifest)
    # The service's path: json → dict → msgspec.convert, which also checks the contract's bounds.
    assert msgspec.convert(json.loads(raw), Manifest) == manifest
    assert manifest.name == model and manifest.version == version_dir.name
    assert manifest.task == ("binary" if model == "heart" else "multiclass")
    assert (manifest.inputs.features is None) == (model == "digits") and (manifest.inputs.pixels is None) == (
        model == "heart"
    )
    # Nothing written is lost, renamed or added by the type: encoding the decoded struct gives the file back.
    assert msgspec.to_builtins(manifest) == json.loads(raw)


def test_heart_metrics_hold_what_the_contract_names(heart_version: Path) -> None:
    manifest = manifest_of(heart_version)
    metrics = manifest["metrics"]
    for section in ("cv", "baseline"):
        for key in ("roc_auc", "accuracy", "brier", "log_loss"):
            assert set(metrics[section][key]) == {"mean", "std"}
            assert 0 <= metrics[section][key]["mean"] <= 1 or key == "log_loss"
    assert len(metrics["test"]["confusion_matrix"]) == 2
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == metrics["test"]["rows"]
    assert 0 < manifest["threshold"]["value"] < 1 and "FN" in manifest["threshold"]["rule"]
    assert [f["name"] for f in manifest["inputs"]["features"]] == list(HEART_FEATURE_NAMES)


def test_digits_metrics_hold_what_the_contract_names(digits_version: Path) -> None:
    manifest = manifest_of(digits_version)
    metrics = manifest["metrics"]
    assert set(metrics["cv"]["accuracy"]) == {"mean", "std"}
    assert set(metrics["baseline"]["accuracy"]) == {"mean", "std"}
    assert len(metrics["test"]["per_class_recall"]) == 10
    assert np.asarray(metrics["test"]["confusion_matrix"]).shape == (10, 10)
    assert 0 < manifest["threshold"]["value"] <= 1


def onnx_run(version_dir: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def test_heart_reference_rows_agree_with_onnx(heart_version: Path) -> None:
    reference = json.loads((heart_version / "reference.json").read_text())
    assert HEART_EXAMPLE in reference["inputs"]
    assert any(row["thal"] is None and row["ca"] is None for row in reference["inputs"])
    x = heart_matrix(pd.DataFrame(reference["inputs"]))
    np.testing.assert_allclose(onnx_run(heart_version, x), reference["probabilities"], atol=1e-5)


def test_digits_reference_rows_agree_with_onnx(digits_version: Path) -> None:
    reference = json.loads((digits_version / "reference.json").read_text())
    x = np.array([row["pixels"] for row in reference["inputs"]], dtype=np.float32)
    probabilities = onnx_run(digits_version, x)
    np.testing.assert_allclose(probabilities, reference["probabilities"], atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model", ["heart", "digits"])
def test_a_python_user_reloads_the_torch_model_in_a_fresh_process(small_artifacts: Path, model: str) -> None:
    version_dir = small_artifacts / model / (small_artifacts / model / CURRENT_FILE).read_text().strip()
    reference = json.loads((version_dir / "reference.json").read_text())
    row = HEART_EXAMPLE if model == "heart" else reference["inputs"][0]
    expected = reference["probabilities"][reference["inputs"].index(row)]
    script = f"""
import json, sys, numpy as np, pandas as pd, torch
from training.reload import load_model
from training.data import heart_matrix
model = load_model({str(version_dir)!r})
row = json.loads(sys.argv[1])
x = heart_matrix(pd.DataFrame([row])) if {model!r} == "heart" else np.array([row["pixels"]], dtype=np.float32)
print(json.dumps(model(torch.as_tensor(x)).detach().numpy()[0].tolist()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(row)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout), expected, atol=1e-6)


def test_preprocessing_never_sees_the_test_split(tmp_path: Path) -> None:
    """Poison the held-out rows' cholesterol: nothing the artifact learned may move."""
    config = small(RunConfig(artifacts_dir=tmp_path / "artifacts", models=("heart",), report=False))
    frame = load_cleveland().frame
    _, held_out = stratified_split(frame["target"].to_numpy(), config.heart.test_size, config.heart.seed)
    poisoned = frame.copy()
    poisoned.loc[held_out, "chol"] = 700.0
    csv = tmp_path / "poisoned.csv"
    poisoned.to_csv(csv, index=False)
    clean_csv = tmp_path / "clean.csv"
    frame.to_csv(clean_csv, index=False)
    clean = run(replace(config, heart_csv=clean_csv), log=lambda _: None)["heart"]
    dirty = run(replace(config, heart_csv=csv, artifacts_dir=tmp_path / "dirty"), log=lambda _: None)["heart"]
    clean_weights = torch.load(clean / "weights.pt", weights_only=True)
    dirty_weights = torch.load(dirty / "weights.pt", weights_only=True)
    assert clean_weights.keys() == dirty_weights.keys()
    for key in clean_weights:
        assert torch.equal(clean_weights[key], dirty_weights[key]), key
    assert manifest_of(clean)["metrics"]["cv"] == manifest_of(dirty)["metrics"]["cv"]


def test_same_seed_and_data_give_the_same_weights_and_metrics(tmp_path: Path) -> None:
    config = small(RunConfig(models=("heart",), report=False))
    first = run(replace(config, artifacts_dir=tmp_path / "a"), log=lambda _: None)["heart"]
    second = run(replace(config, artifacts_dir=tmp_path / "b"), log=lambda _: None)["heart"]
    assert sha256_file(first / "model.onnx") == sha256_file(second / "model.onnx")
    a, b = torch.load(first / "weights.pt", weights_only=True), torch.load(second / "weights.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert manifest_of(first)["metrics"] == manifest_of(second)["metrics"]
    assert manifest_of(first)["threshold"] == manifest_of(second)["threshold"]


def test_a_failed_run_leaves_current_on_the_previous_version(tmp_path: Path, monkeypatch) -> None:
    config = small(RunConfig(artifacts_dir=tmp_path, models=("heart",), report=False))
    good = run(config, log=lambda _: None)["heart"]

    def disagreeing_export(*args, **kwargs):
        raise ExportParityError("model.onnx: onnxruntime differs from torch")

    monkeypatch.setattr(build_module, "check_parity", disagreeing_export)
    with pytest.raises(ExportParityError):
        run(config, log=lambda _: None)
    assert (tmp_path / "heart" / CURRENT_FILE).read_text().strip() == good.name
    # No half-built version and no leftover staging directory.
    assert {p.name for p in (tmp_path / "heart").iterdir()} == {CURRENT_FILE, good.name}


def test_cli_exits_non_zero_naming_the_bad_column(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    load_cleveland().frame.drop(columns=["ca"]).to_csv(bad, index=False)
    assert main(["--heart-csv", str(bad), "--models", "heart", "--artifacts-dir", str(tmp_path / "a")]) == 2
    assert "missing column(s) ['ca']" in capsys.readouterr().err
    assert not (tmp_path / "a" / "heart" / CURRENT_FILE).exists()


def test_cli_exit_code_from_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("age,sex\n1,2\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--heart-csv",
            str(bad),
            "--models",
            "heart",
            "--artifacts-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "missing column(s)" in done.stderr and "'thal'" in done.stderr
