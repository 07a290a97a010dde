"""The heart-disease task: Cleveland patients, a cross-fitted MLP ensemble, a cost-based threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from service.contract import (
    BACKGROUND_FILE,
    HEART_EXAMPLE,
    HEART_FEATURE_NAMES,
    HEART_FEATURES,
    HEART_LABELS,
    HEART_ONNX_INPUT,
    HEART_ONNX_OUTPUT,
    ONNX_FILE,
    Drift,
    Manifest,
    ModelInputs,
    ModelOutputs,
    Threshold,
)
from service.drift import category_column, number_column
from training.config import HeartConfig, RunConfig
from training.data import HeartData, heart_matrix, heart_records, load_cleveland, load_heart_csv
from training.evaluate import binary_metrics, choose_threshold, confusion, cross_validate_heart
from training.explain import HEART_BACKGROUND_RULE, heart_background, heart_contributions
from training.fuse import FusedTabularEnsemble, UnfoldableModelError
from training.heart import FittedHeart, fit_baseline, fit_heart
from training.models import HeartMLP, LogitEnsemble, TabularEncoder
from training.tasks.base import Evaluation, Task, Trained, batch_tensor, ensemble_architecture

# Fields that other hospitals' records lack most often: the model card reports how the test
# metrics hold up when each is missing, and the reference rows include patients without them.
OFTEN_MISSING = ("ca", "thal", "slope", "chol")


def _masked(frame: pd.DataFrame, fields: tuple[str, ...]) -> pd.DataFrame:
    masked = frame.copy()
    for field in fields:
        masked[field] = np.nan
    return masked


def _test_frame(trained: Trained) -> pd.DataFrame:
    """The held-out patients in canonical columns (API values, NaN for missing)."""
    return trained.data.frame.iloc[trained.test].reset_index(drop=True)


def missing_value_robustness(fitted: FittedHeart, test: pd.DataFrame, y: np.ndarray) -> dict[str, dict[str, float]]:
    """Test metrics with each often-missing field blanked, and with all of them blanked."""
    cases = {field: (field,) for field in OFTEN_MISSING} | {"all of " + "+".join(OFTEN_MISSING): OFTEN_MISSING}
    return {
        name: binary_metrics(y, fitted.predict_proba(heart_matrix(_masked(test, fields))))
        for name, fields in cases.items()
    }


class HeartTask(Task):
    """P(heart disease) from 13 clinical fields, any of the nullable ones possibly missing."""

    name = "heart"
    kind = "binary"
    rows_are = "patients"
    labels = HEART_LABELS
    inputs = ModelInputs(
        onnx=batch_tensor(
            HEART_ONNX_INPUT,
            len(HEART_FEATURES),
            encoding="one column per feature in this order; categories as their codes; NaN for a missing value",
        ),
        features=[spec.to_manifest() for spec in HEART_FEATURES],
    )
    outputs = ModelOutputs(onnx=batch_tensor(HEART_ONNX_OUTPUT, meaning="probability of heart disease"))

    fit = staticmethod(fit_heart)
    cross_validate = staticmethod(cross_validate_heart)

    def config(self, run: RunConfig) -> HeartConfig:
        return run.heart

    def load(self, run: RunConfig) -> HeartData:
        return load_heart_csv(run.heart_csv) if run.heart_csv else load_cleveland()

    def choose_threshold(self, y: np.ndarray, oof_probabilities: np.ndarray, config: HeartConfig) -> Threshold:
        return choose_threshold(y, oof_probabilities, config.false_negative_cost)

    def evaluate(self, trained: Trained) -> Evaluation:
        X, y, dev, y_test = trained.data.X, trained.data.y, trained.dev, trained.y_test
        p_test = trained.fitted.predict_proba(trained.x_test)
        preprocessor, baseline = fit_baseline(X[dev], y[dev], trained.config)
        p_base = baseline.predict_proba(preprocessor.transform(trained.x_test))[:, 1]
        # The confusion matrix, sensitivity and specificity are at the chosen threshold, not at 0.5.
        matrix = confusion(y_test, (p_test >= trained.threshold.value).astype(int), 2)
        (tn, fp), (fn, tp) = matrix
        metrics = {
            "test": {
                **binary_metrics(y_test, p_test),
                "confusion_matrix": matrix,
                "confusion_matrix_at": trained.threshold.value,
                "sensitivity": tp / max(1, tp + fn),
                "specificity": tn / max(1, tn + fp),
                "rows": len(y_test),
            },
            "baseline": {**trained.cv["baseline"], "test": binary_metrics(y_test, p_base)},
            "missing_values": missing_value_robustness(trained.fitted, _test_frame(trained), y_test),
        }
        return Evaluation(metrics, probabilities=p_test, monitored=p_test, baseline_probabilities=p_base)

    def reference(self, trained: Trained) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Held-out patients, the tutorial's example, and held-out patients with the often-missing
        fields absent, so the service's self-check exercises the missing-value path."""
        test = _test_frame(trained)
        inputs = [*heart_records(test), dict(HEART_EXAMPLE), *heart_records(_masked(test.head(10), OFTEN_MISSING))]
        return inputs, heart_matrix(pd.DataFrame(inputs))

    def architecture(self, config: HeartConfig) -> dict[str, Any]:
        architecture = ensemble_architecture(HeartMLP, config, "hidden", "dropout")
        if len(config.hidden) == 1:  # what served_network folds
            architecture["onnx_graph"] = "the members and their encoders folded into one layer (training/fuse.py)"
        return architecture

    def served_network(self, model: nn.Module) -> nn.Module:
        # One hidden layer for the whole ensemble, encoders folded in: 4.5× less onnxruntime time (fuse.py).
        # A configuration with deeper members cannot be folded that way and is exported as trained.
        try:
            return FusedTabularEnsemble.from_ensemble(model)
        except UnfoldableModelError:
            return model

    def network(self, payload: dict[str, Any]) -> nn.Module:
        # One member per fitted preprocessor: each member's encoder holds its own training statistics.
        hidden, dropout = tuple(payload["architecture"]["hidden"]), payload["architecture"]["dropout"]
        return LogitEnsemble(
            [HeartMLP(TabularEncoder.from_preprocessor(pre), hidden, dropout) for pre in payload["preprocessors"]]
        )

    def preprocess(self, trained: Trained) -> dict[str, Any]:
        return {
            "preprocessors": trained.fitted.preprocessors,
            "features": [spec.to_manifest() for spec in HEART_FEATURES],
            "threshold": trained.threshold.value,
        }

    def data_facts(self, trained: Trained) -> dict[str, Any]:
        return {"positives": int(trained.data.y.sum())}

    def drift(self, trained: Trained) -> Drift:
        """Every feature of the training split as the ONNX matrix holds it: deciles of the numbers, the
        share of each category, and how often each is missing."""
        x = trained.data.X[trained.dev].astype(np.float32)
        columns = [
            number_column(spec.name, x[:, index])
            if spec.kind == "number"
            else category_column(spec.name, x[:, index], spec.codes, [str(value) for value in spec.categories])
            for index, spec in enumerate(HEART_FEATURES)
        ]
        return Drift(source="training split", rows=len(x), columns=columns)

    def background(self, trained: Trained) -> tuple[np.ndarray, dict[str, Any]]:
        rows = heart_background(trained.data.X[trained.dev], trained.config.seed)
        return rows, {
            "rule": HEART_BACKGROUND_RULE,
            "method": "exact Shapley values (interventional: v(S) = mean over background rows b of "
            "f(x_S, b_rest)) of the served graph's P(disease)",
            "unit": "probability",
            "columns": list(HEART_FEATURE_NAMES),
        }

    def write_report(self, staging: Path, manifest: Manifest, trained: Trained, evaluation: Evaluation) -> None:
        from training import report, report_explain  # lazily: they set matplotlib's backend (not for reload users)

        p_base = evaluation.baseline_probabilities
        assert p_base is not None, "HeartTask.evaluate sets the baseline's probabilities"
        report.write_heart_report(
            staging,
            manifest,
            trained.y_test,
            evaluation.probabilities,
            p_base,
            trained.fitted.histories,
            trained.cv["oof_probabilities"],
            trained.y_dev,
        )
        background = np.asarray(json.loads((staging / BACKGROUND_FILE).read_text())["rows"], dtype=np.float32)
        contributions, base = heart_contributions(staging / ONNX_FILE, trained.x_test, background)
        report_explain.write_heart_importance(staging, list(HEART_FEATURE_NAMES), contributions, base)

    def headline(self, manifest: Manifest) -> list[str]:
        m = manifest.metrics
        lines = [
            f"  {key:<9} CV {m['cv'][key]['mean']:.3f} ± {m['cv'][key]['std']:.3f}   "
            f"baseline CV {m['baseline'][key]['mean']:.3f}   test {m['test'][key]:.3f}"
            for key in ("roc_auc", "accuracy", "brier", "log_loss")
        ]
        lines.append(
            f"  threshold {manifest.threshold.value:.2f}: sensitivity {m['test']['sensitivity']:.3f}, "
            f"specificity {m['test']['specificity']:.3f} on the test split"
        )
        return lines
