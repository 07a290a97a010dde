"""The digits task: sklearn's 8×8 digits, a CNN ensemble, a minimum confidence for its answers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, recall_score
from torch import nn

from service.contract import (
    BACKGROUND_FILE,
    DIGIT_LABELS,
    DIGIT_MAX_VALUE,
    DIGIT_PIXELS,
    DIGIT_SIDE,
    DIGITS_ONNX_INPUT,
    DIGITS_ONNX_OUTPUT,
    ONNX_FILE,
    Drift,
    Manifest,
    ModelInputs,
    ModelOutputs,
    PixelSpec,
    Threshold,
)
from service.drift import (
    IMAGE_STATISTICS,
    category_column,
    classification_statistics,
    image_statistics,
    number_column,
)
from training.augment import redraw_digits
from training.config import DigitsConfig, RunConfig
from training.data import DigitsData, load_digits_data
from training.digits import fit_baseline, fit_digits
from training.evaluate import choose_min_confidence, confusion, cross_validate_digits
from training.explain import DIGITS_BACKGROUND_RULE, digit_maps, digits_background
from training.models import DigitsCNN, LogitEnsemble
from training.tasks.base import Evaluation, Task, Trained, batch_tensor, ensemble_architecture

# reference.json holds this many held-out images: enough to exercise every class several times in
# the service's self-check, few enough to keep the file small.
REFERENCE_ROWS = 200


def per_class_recall(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    recall = recall_score(y, predicted, average=None, labels=list(range(len(DIGIT_LABELS))))
    return dict(zip(DIGIT_LABELS, recall.tolist(), strict=True))


def answer_summary(y: np.ndarray, proba: np.ndarray, min_confidence: float) -> dict[str, Any]:
    """Accuracy, the share of answers at or above the minimum confidence, and their accuracy."""
    predicted = proba.argmax(axis=1)
    confident = proba.max(axis=1) >= min_confidence
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "confident_share": float(confident.mean()),
        # None, not NaN, when no answer was confident: the manifest is strict JSON.
        "accuracy_when_confident": float((predicted[confident] == y[confident]).mean()) if confident.any() else None,
        "rows": len(y),
    }


class DigitsTask(Task):
    """Which digit 0..9 an 8×8 grid of ink counts shows, and whether the answer is confident."""

    name = "digits"
    kind = "multiclass"
    rows_are = "images"
    labels = DIGIT_LABELS
    inputs = ModelInputs(
        onnx=batch_tensor(
            DIGITS_ONNX_INPUT, DIGIT_PIXELS, encoding="8×8 ink counts, row-major, each 0..16 (sklearn's digits)"
        ),
        pixels=PixelSpec(count=DIGIT_PIXELS, minimum=0, maximum=DIGIT_MAX_VALUE, side=DIGIT_SIDE),
    )
    outputs = ModelOutputs(
        onnx=batch_tensor(DIGITS_ONNX_OUTPUT, len(DIGIT_LABELS), meaning="probability of each digit 0..9")
    )

    fit = staticmethod(fit_digits)
    cross_validate = staticmethod(cross_validate_digits)

    def config(self, run: RunConfig) -> DigitsConfig:
        return run.digits

    def load(self, run: RunConfig) -> DigitsData:
        return load_digits_data()

    def choose_threshold(self, y: np.ndarray, oof_probabilities: np.ndarray, config: DigitsConfig) -> Threshold:
        return choose_min_confidence(y, oof_probabilities, config.confident_precision)

    def evaluate(self, trained: Trained) -> Evaluation:
        y_test = trained.y_test
        proba = trained.fitted.predict_proba(trained.x_test)
        predicted = proba.argmax(axis=1)
        baseline = fit_baseline(trained.data.X[trained.dev], trained.y_dev, trained.config)
        # The test digits redrawn as the training views are (other draws): how the minimum confidence
        # sorts answers on digits unlike the plain 8×8 ones, which are nearly all right and confident.
        views = redraw_digits(trained.x_test, replace(trained.config.redraw, views=2), trained.config.seed + 2000)
        redrawn = trained.fitted.predict_proba(views.reshape(-1, DIGIT_PIXELS))
        metrics = {
            "test": {
                **answer_summary(y_test, proba, trained.threshold.value),
                "confusion_matrix": confusion(y_test, predicted, len(DIGIT_LABELS)),
                "per_class_recall": per_class_recall(y_test, predicted),
            },
            "test_redrawn": answer_summary(np.repeat(y_test, views.shape[1]), redrawn, trained.threshold.value),
            "baseline": {
                **trained.cv["baseline"],
                "test": {
                    # The SVC was fitted on counts scaled to 0..1, so it scores them scaled the same way.
                    "accuracy": float(accuracy_score(y_test, baseline.predict(trained.x_test / DIGIT_MAX_VALUE))),
                    "params": {k: float(v) for k, v in baseline.best_params_.items()},
                },
            },
        }
        # The service's drift histogram watches the top-class probability of each answer.
        return Evaluation(metrics, probabilities=proba, monitored=proba.max(axis=1))

    def drift(self, trained: Trained) -> Drift:
        """The training images' ink statistics, and the served network's answers on the held-out images
        (on its own training images it would be over-confident; the cross-validation's fold networks are
        not the one served, and a weak one answers differently)."""
        images = image_statistics(trained.data.X[trained.dev], DIGIT_SIDE)
        probabilities = trained.fitted.predict_proba(trained.x_test)
        answers = classification_statistics(probabilities, trained.threshold.value)
        columns = [number_column(name, images[:, index]) for index, name in enumerate(IMAGE_STATISTICS)]
        columns.append(category_column("predicted", answers[:, 0], range(len(DIGIT_LABELS)), DIGIT_LABELS))
        columns.append(category_column("confident", answers[:, 1], (0, 1), ("no", "yes")))
        return Drift(source="training split (answers: test split)", rows=len(images), columns=columns)

    def reference(self, trained: Trained) -> tuple[list[dict[str, Any]], np.ndarray]:
        rows = trained.x_test[:REFERENCE_ROWS]
        return [{"pixels": [int(v) for v in row]} for row in rows], rows

    def architecture(self, config: DigitsConfig) -> dict[str, Any]:
        return ensemble_architecture(DigitsCNN, config, "channels", "hidden", "dropout")

    def network(self, payload: dict[str, Any]) -> nn.Module:
        arch = payload["architecture"]
        members = [DigitsCNN(tuple(arch["channels"]), arch["hidden"], arch["dropout"]) for _ in range(arch["members"])]
        return LogitEnsemble(members)

    def preprocess(self, trained: Trained) -> dict[str, Any]:
        # The CNN scales its input itself; these say what the raw input is, for Python users.
        return {
            "pixel_scale": float(DIGIT_MAX_VALUE),
            "image_shape": [DIGIT_SIDE, DIGIT_SIDE],
            "min_confidence": trained.threshold.value,
        }

    def background(self, trained: Trained) -> tuple[np.ndarray, dict[str, Any]]:
        return digits_background(trained.data.X[trained.dev]), {
            "rule": DIGITS_BACKGROUND_RULE,
            "method": "occlusion: per pixel, P(predicted digit) minus the same with that pixel set to the "
            "background's (does not add up to the answer minus the base value)",
            "unit": "probability",
            "columns": [f"pixel_{index}" for index in range(DIGIT_PIXELS)],
        }

    def write_report(self, staging: Path, manifest: Manifest, trained: Trained, evaluation: Evaluation) -> None:
        from training import report, report_explain  # lazily: they set matplotlib's backend (not for reload users)

        report.write_digits_report(
            staging, manifest, trained.y_test, evaluation.probabilities, trained.fitted.histories, trained.x_test
        )
        background = np.asarray(json.loads((staging / BACKGROUND_FILE).read_text())["rows"], dtype=np.float32)
        maps, predicted = digit_maps(staging / ONNX_FILE, trained.x_test, background)
        report_explain.write_digit_maps(staging, maps, predicted, DIGIT_SIDE)

    def headline(self, manifest: Manifest) -> list[str]:
        m = manifest.metrics
        redrawn = m["test_redrawn"]
        return [
            f"  accuracy  CV {m['cv']['accuracy']['mean']:.4f} ± {m['cv']['accuracy']['std']:.4f}   "
            f"baseline CV {m['baseline']['accuracy']['mean']:.4f}   test {m['test']['accuracy']:.4f}   "
            f"baseline test {m['baseline']['test']['accuracy']:.4f}",
            f"  min confidence {manifest.threshold.value:.2f}: "
            f"{m['test']['confident_share']:.1%} of test predictions confident; test digits redrawn: accuracy "
            f"{redrawn['accuracy']:.4f}, {redrawn['confident_share']:.1%} confident, "
            f"right when confident {redrawn['accuracy_when_confident'] or 0:.4f}",
        ]
