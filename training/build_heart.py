"""The heart artifact, end to end: data → split → cross-validation → final fit → test → export."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import torch

from service.contract import (
    HEART_EXAMPLE,
    HEART_FEATURES,
    HEART_LABELS,
    HEART_ONNX_INPUT,
    HEART_ONNX_OUTPUT,
    ONNX_FILE,
    PREPROCESS_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
)
from training import bundle, report
from training.config import HeartConfig, RunConfig, to_dict
from training.data import HeartData, heart_matrix, heart_records, load_cleveland, load_heart_csv
from training.evaluate import (
    binary_metrics,
    choose_threshold,
    confusion,
    cross_validate_heart,
    probability_histogram,
)
from training.export import check_parity, export_onnx
from training.heart import fit_baseline, fit_heart
from training.preprocess import stratified_split

# Fields that other hospitals' records lack most often: the model card reports how the test
# metrics hold up when each is missing.
OFTEN_MISSING = ("ca", "thal", "slope", "chol")


def _masked(frame: pd.DataFrame, fields: tuple[str, ...]) -> pd.DataFrame:
    masked = frame.copy()
    for field in fields:
        masked[field] = np.nan
    return masked


def missing_value_robustness(fitted: Any, test: pd.DataFrame, y: np.ndarray) -> dict[str, dict[str, float]]:
    """Test metrics with each often-missing field blanked, and with all of them blanked."""
    cases = {field: (field,) for field in OFTEN_MISSING} | {"all of " + "+".join(OFTEN_MISSING): OFTEN_MISSING}
    return {
        name: binary_metrics(y, fitted.predict_proba(heart_matrix(_masked(test, fields))))
        for name, fields in cases.items()
    }


def reference_inputs(test: pd.DataFrame) -> list[dict[str, Any]]:
    """Held-out patients in API form, the tutorial's example, and held-out patients with the
    often-missing fields absent, so the service's self-check exercises the missing-value path."""
    masked = _masked(test.head(10), OFTEN_MISSING)
    return [*heart_records(test), dict(HEART_EXAMPLE), *heart_records(masked)]


def build_heart(run: RunConfig, log: Callable[[str], None] = print) -> Path:
    """Train, evaluate and publish a heart artifact; returns the new version's directory."""
    config: HeartConfig = run.heart
    data: HeartData = load_heart_csv(run.heart_csv) if run.heart_csv else load_cleveland()
    X, y = data.X, data.y
    dev, test = stratified_split(y, config.test_size, config.seed)
    log(f"[heart] {len(y)} patients from {data.source}: {len(dev)} for training, {len(test)} held out")

    final_fit = partial(fit_heart, X[dev], y[dev], config, seed=config.seed, label="heart")
    cv = cross_validate_heart(X[dev], y[dev], config, log, alongside=final_fit)
    fitted = cv["alongside"]
    threshold = choose_threshold(y[dev], cv["oof_probabilities"], config.false_negative_cost)
    p_test = fitted.predict_proba(X[test])
    preprocessor, baseline = fit_baseline(X[dev], y[dev], config)
    p_base = baseline.predict_proba(preprocessor.transform(X[test]))[:, 1]
    decided = (p_test >= threshold["value"]).astype(int)
    matrix = confusion(y[test], decided, 2)
    (tn, fp), (fn, tp) = matrix
    test_frame = data.frame.iloc[test].reset_index(drop=True)
    metrics = {
        "cv": cv["cv"],
        "cv_folds": cv["folds"],
        "test": {
            **binary_metrics(y[test], p_test),
            "confusion_matrix": matrix,
            "confusion_matrix_at": threshold["value"],
            "sensitivity": tp / max(1, tp + fn),
            "specificity": tn / max(1, tn + fp),
            "rows": len(test),
        },
        "baseline": {**cv["baseline"], "test": binary_metrics(y[test], p_base)},
        "missing_values": missing_value_robustness(fitted, test_frame, y[test]),
    }

    model_dir = run.artifacts_dir / "heart"
    created_at = bundle.now_utc()
    with bundle.staging_directory(model_dir) as staging:
        export_onnx(fitted.model, X[dev], staging / ONNX_FILE, HEART_ONNX_INPUT, HEART_ONNX_OUTPUT)
        inputs = reference_inputs(test_frame)
        reference_x = heart_matrix(pd.DataFrame(inputs))
        parity = {
            "reference": check_parity(fitted.model, staging / ONNX_FILE, reference_x, "reference"),
            "test_split": check_parity(fitted.model, staging / ONNX_FILE, X[test], "test split"),
        }
        reference_p = fitted.predict_proba(reference_x)
        bundle.write_json(staging / REFERENCE_FILE, {"inputs": inputs, "probabilities": reference_p.tolist()})
        torch.save(fitted.model.state_dict(), staging / WEIGHTS_FILE)
        architecture = {
            "class": "LogitEnsemble[HeartMLP]",
            "members": config.ensemble,
            "hidden": list(config.hidden),
            "dropout": config.dropout,
        }
        joblib.dump(
            {
                "model": "heart",
                "architecture": architecture,
                "preprocessors": fitted.preprocessors,
                "features": [spec.to_manifest() for spec in HEART_FEATURES],
                "threshold": threshold["value"],
                "config": to_dict(config),
            },
            staging / PREPROCESS_FILE,
        )
        manifest = bundle.base_manifest(
            "heart",
            created_at,
            config.seed,
            data={
                "source": data.source,
                "sha256": data.sha256,
                "rows": len(y),
                "positives": int(y.sum()),
                "split": {"train": len(dev), "test": len(test), "test_size": config.test_size, "seed": config.seed},
            },
            config=to_dict(config),
            staging=staging,
        )
        manifest |= {
            "task": "binary",
            "architecture": architecture,
            "inputs": {
                "onnx": {
                    "name": HEART_ONNX_INPUT,
                    "dtype": "float32",
                    "shape": [-1, len(HEART_FEATURES)],
                    "encoding": "one column per feature in this order; categories as their codes; "
                    "NaN for a missing value",
                },
                "features": [spec.to_manifest() for spec in HEART_FEATURES],
            },
            "outputs": {
                "onnx": {
                    "name": HEART_ONNX_OUTPUT,
                    "dtype": "float32",
                    "shape": [-1],
                    "meaning": "probability of heart disease",
                }
            },
            "labels": list(HEART_LABELS),
            "threshold": threshold,
            "metrics": metrics,
            "parity": {"tolerance": 1e-5, "max_abs_diff": parity},
            "monitoring": {"test_probability_histogram": probability_histogram(p_test)},
            "training": {"histories": [h.as_dict() for h in fitted.histories]},
        }
        if run.report:
            report.write_heart_report(
                staging, manifest, y[test], p_test, p_base, fitted.histories, cv["oof_probabilities"], y[dev]
            )
        version_dir = bundle.publish(staging, model_dir, manifest)
    log(f"[heart] published {version_dir}")
    return version_dir
