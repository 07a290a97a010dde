"""The digits artifact, end to end: data → split → cross-validation → final fit → test → export."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import joblib
import torch
from sklearn.metrics import accuracy_score, recall_score

from service.contract import (
    DIGIT_LABELS,
    DIGIT_MAX_VALUE,
    DIGIT_PIXELS,
    DIGIT_SIDE,
    DIGITS_ONNX_INPUT,
    DIGITS_ONNX_OUTPUT,
    ONNX_FILE,
    PREPROCESS_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
)
from training import bundle, report
from training.config import DigitsConfig, RunConfig, to_dict
from training.data import load_digits_data
from training.digits import fit_baseline, fit_digits
from training.evaluate import choose_min_confidence, confusion, cross_validate_digits, probability_histogram
from training.export import check_parity, export_onnx
from training.preprocess import stratified_split

REFERENCE_ROWS = 200


def build_digits(run: RunConfig, log: Callable[[str], None] = print) -> Path:
    """Train, evaluate and publish a digits artifact; returns the new version's directory."""
    config: DigitsConfig = run.digits
    data = load_digits_data()
    X, y = data.X, data.y
    dev, test = stratified_split(y, config.test_size, config.seed)
    log(f"[digits] {len(y)} images from {data.source}: {len(dev)} for training, {len(test)} held out")

    final_fit = partial(fit_digits, X[dev], y[dev], config, seed=config.seed, label="digits")
    cv = cross_validate_digits(X[dev], y[dev], config, log, alongside=final_fit)
    fitted = cv["alongside"]
    min_confidence = choose_min_confidence(y[dev], cv["oof_probabilities"], config.confident_precision)
    proba = fitted.predict_proba(X[test])
    predicted = proba.argmax(axis=1)
    baseline = fit_baseline(X[dev], y[dev], config)
    confident = proba.max(axis=1) >= min_confidence["value"]
    metrics = {
        "cv": cv["cv"],
        "cv_folds": cv["folds"],
        "test": {
            "accuracy": float(accuracy_score(y[test], predicted)),
            "confusion_matrix": confusion(y[test], predicted, 10),
            "per_class_recall": dict(
                zip(
                    DIGIT_LABELS,
                    recall_score(y[test], predicted, average=None, labels=list(range(10))).tolist(),
                    strict=True,
                )
            ),
            "confident_share": float(confident.mean()),
            "accuracy_when_confident": float((predicted[confident] == y[test][confident]).mean())
            if confident.any()
            else None,
            "rows": len(test),
        },
        "baseline": {
            **cv["baseline"],
            "test": {
                "accuracy": float(accuracy_score(y[test], baseline.predict(X[test] / DIGIT_MAX_VALUE))),
                "params": {k: float(v) for k, v in baseline.best_params_.items()},
            },
        },
    }

    model_dir = run.artifacts_dir / "digits"
    created_at = bundle.now_utc()
    with bundle.staging_directory(model_dir) as staging:
        export_onnx(fitted.model, X[dev], staging / ONNX_FILE, DIGITS_ONNX_INPUT, DIGITS_ONNX_OUTPUT)
        reference_x = X[test][:REFERENCE_ROWS]
        parity = {
            "reference": check_parity(fitted.model, staging / ONNX_FILE, reference_x, "reference"),
            "test_split": check_parity(fitted.model, staging / ONNX_FILE, X[test], "test split"),
        }
        bundle.write_json(
            staging / REFERENCE_FILE,
            {
                "inputs": [{"pixels": [int(v) for v in row]} for row in reference_x],
                "probabilities": fitted.predict_proba(reference_x).tolist(),
            },
        )
        torch.save(fitted.model.state_dict(), staging / WEIGHTS_FILE)
        architecture = {
            "class": "LogitEnsemble[DigitsCNN]",
            "members": config.ensemble,
            "channels": list(config.channels),
            "hidden": config.hidden,
            "dropout": config.dropout,
        }
        joblib.dump(
            {
                "model": "digits",
                "architecture": architecture,
                "pixel_scale": float(DIGIT_MAX_VALUE),
                "image_shape": [DIGIT_SIDE, DIGIT_SIDE],
                "min_confidence": min_confidence["value"],
                "config": to_dict(config),
            },
            staging / PREPROCESS_FILE,
        )
        manifest = bundle.base_manifest(
            "digits",
            created_at,
            config.seed,
            data={
                "source": data.source,
                "sha256": data.sha256,
                "rows": len(y),
                "split": {"train": len(dev), "test": len(test), "test_size": config.test_size, "seed": config.seed},
            },
            config=to_dict(config),
            staging=staging,
        )
        manifest |= {
            "task": "multiclass",
            "architecture": architecture,
            "inputs": {
                "onnx": {
                    "name": DIGITS_ONNX_INPUT,
                    "dtype": "float32",
                    "shape": [-1, DIGIT_PIXELS],
                    "encoding": "8×8 ink counts, row-major, each 0..16 (sklearn's digits)",
                },
                "pixels": {"count": DIGIT_PIXELS, "minimum": 0, "maximum": DIGIT_MAX_VALUE, "side": DIGIT_SIDE},
            },
            "outputs": {
                "onnx": {
                    "name": DIGITS_ONNX_OUTPUT,
                    "dtype": "float32",
                    "shape": [-1, 10],
                    "meaning": "probability of each digit 0..9",
                }
            },
            "labels": list(DIGIT_LABELS),
            "threshold": min_confidence,
            "metrics": metrics,
            "parity": {"tolerance": 1e-5, "max_abs_diff": parity},
            "monitoring": {"test_probability_histogram": probability_histogram(proba.max(axis=1))},
            "training": {"histories": [h.as_dict() for h in fitted.histories]},
        }
        if run.report:
            report.write_digits_report(staging, manifest, y[test], proba, fitted.histories, X[test])
        version_dir = bundle.publish(staging, model_dir, manifest)
    log(f"[digits] published {version_dir}")
    return version_dir
