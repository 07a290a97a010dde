"""The model card (report/README.md) and the plots a person wants to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on build machines

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from service.contract import REPORT_DIR, Manifest
from training.engine import History


def _save(figure: plt.Figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def plot_histories(histories: list[History], path: Path, title: str) -> str:
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for k, history in enumerate(histories):
        tag = f" {k + 1}" if len(histories) > 1 else ""
        loss_axis.plot(history.train_loss, color=f"C{k}", alpha=0.5, label=f"train{tag}")
        loss_axis.plot(history.val_loss, color=f"C{k}", linestyle="--", label=f"validation{tag}")
        loss_axis.axvline(history.best_epoch, color=f"C{k}", linewidth=0.6, linestyle=":")
        accuracy_axis.plot(history.train_accuracy, color=f"C{k}", alpha=0.5)
        accuracy_axis.plot(history.val_accuracy, color=f"C{k}", linestyle="--")
    loss_axis.set(title=f"{title}: loss (dotted: kept epoch)", xlabel="epoch", ylabel="loss")
    accuracy_axis.set(title=f"{title}: accuracy", xlabel="epoch", ylabel="accuracy")
    loss_axis.legend(fontsize=7, ncol=2)
    return _save(figure, path)


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> str:
    values = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(1.2 + 0.55 * len(labels), 1.0 + 0.5 * len(labels)))
    axis.imshow(values, cmap="Blues")
    for (i, j), count in np.ndenumerate(values):
        axis.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > values.max() / 2 else "black",
            fontsize=9,
        )
    axis.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    return _save(figure, path)


def plot_roc(y: np.ndarray, p: np.ndarray, p_base: np.ndarray, path: Path) -> str:
    figure, axis = plt.subplots(figsize=(5, 5))
    for name, scores in (("network", p), ("logistic regression", p_base)):
        fpr, tpr, _ = roc_curve(y, scores)
        axis.plot(fpr, tpr, label=name)
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (held-out test)")
    axis.legend()
    return _save(figure, path)


def plot_calibration(y: np.ndarray, p: np.ndarray, path: Path) -> str:
    figure, axis = plt.subplots(figsize=(5, 5))
    observed, predicted = calibration_curve(y, p, n_bins=8, strategy="quantile")
    axis.plot(predicted, observed, marker="o", label="network")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    axis.set(xlabel="predicted probability", ylabel="observed frequency", title="Calibration (held-out test)")
    axis.legend()
    return _save(figure, path)


def plot_precision_recall(y: np.ndarray, p: np.ndarray, threshold: float, path: Path) -> str:
    precision, recall, thresholds = precision_recall_curve(y, p)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(thresholds, precision[:-1], label="precision")
    axis.plot(thresholds, recall[:-1], label="recall (sensitivity)")
    axis.axvline(threshold, color="black", linestyle="--", label=f"decision threshold {threshold:.2f}")
    axis.set(xlabel="threshold", ylabel="score", title="Precision and recall against threshold (test)")
    axis.legend()
    return _save(figure, path)


def plot_digit_errors(x: np.ndarray, y: np.ndarray, proba: np.ndarray, path: Path) -> str:
    wrong = np.flatnonzero(proba.argmax(axis=1) != y)[:16]
    figure, axes = plt.subplots(2, 8, figsize=(12, 3.4))
    for axis, index in zip(axes.flat, list(wrong) + [None] * (16 - len(wrong)), strict=True):
        axis.axis("off")
        if index is not None:
            axis.imshow(x[index].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
            axis.set_title(f"{y[index]}→{proba[index].argmax()} ({proba[index].max():.2f})", fontsize=8)
    figure.suptitle("Misclassified test digits: true→predicted (confidence)")
    return _save(figure, path)


def _fmt(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _served_as(architecture: dict[str, Any]) -> str:
    """The model card's line on how model.onnx holds the ensemble, when the build folded it."""
    if "onnx_graph" not in architecture:
        return ""
    return (
        " `model.onnx` computes the same function with the members and their preprocessing folded into one"
        " network (one hidden layer of all members' units); the build checks it against the ensemble to 1e-5."
    )


def write_heart_report(
    version_dir: Path,
    manifest: Manifest,
    y_test: np.ndarray,
    p_test: np.ndarray,
    p_base: np.ndarray,
    histories: list[History],
    oof: np.ndarray,
    y_dev: np.ndarray,
) -> None:
    out = version_dir / REPORT_DIR
    out.mkdir()
    m, threshold = manifest.metrics, manifest.threshold.value
    plots = [
        plot_histories(histories, out / "loss_curves.png", "heart"),
        plot_confusion(
            m["test"]["confusion_matrix"],
            ["no disease", "disease"],
            out / "confusion_matrix.png",
            f"test, threshold {threshold:.2f}",
        ),
        plot_roc(y_test, p_test, p_base, out / "roc_curve.png"),
        plot_calibration(y_test, p_test, out / "calibration_curve.png"),
        plot_precision_recall(y_dev, oof, threshold, out / "precision_recall_threshold.png"),
    ]
    cv, base, test = m["cv"], m["baseline"], m["test"]
    rows = "\n".join(
        f"| {k} | {_fmt(cv[k])} | {_fmt(base[k])} | {test[k]:.3f} | {base['test'][k]:.3f} |"
        for k in ("roc_auc", "accuracy", "brier", "log_loss")
    )
    missing = "\n".join(
        f"| {name} | {v['roc_auc']:.3f} | {v['brier']:.3f} |" for name, v in m["missing_values"].items()
    )
    data, arch = manifest.data, manifest.architecture or {}
    text = (
        f"""# Model card: heart-disease risk, version {manifest.version}

**What it does.** Estimates the probability that a patient has heart disease (UCI `num` > 0: at least
one major vessel with > 50 % narrowing) from 13 routine clinical measurements, and turns it into a
yes/no flag at a decision threshold.

**Intended use.** Decision support and teaching; a second opinion next to a clinician, never a diagnosis.
Trained on {data["rows"]} patients of one US clinic in the 1980s (Cleveland Clinic Foundation, UCI); its
probabilities are only as good as the similarity of your patients to those. Not validated on other
populations, on women separately (about a third of the data), or on today's practice.

## Data and split
- Source: `{data["source"]}` (sha256 `{data["sha256"][:16]}…`),
  {data["rows"]} patients, {data["positives"]} with disease.
- A stratified split (seed {data["split"]["seed"]}): {data["split"]["train"]} patients for training and validation,
  {data["split"]["test"]} held out and used once, for the test column below.
- Preprocessing (median imputation, standardisation, one-hot categories, missing-value indicators) is
  fitted on training rows only and lives inside the ONNX graph, which takes the raw features.

## Model
A cross-fitted ensemble of {arch["members"]} MLPs (hidden {arch["hidden"]}, dropout {arch["dropout"]}):
member *k* stops early on its own validation fold and trains on the others; the ensemble averages
their logits. During training, each nullable field is blanked with probability
{manifest.config["missing_rate"]} so that a record without `ca`, `thal`, `slope` or `chol` still
gets a sound probability.{_served_as(arch)}

## Metrics
Cross-validation is {m["cv_folds"]} folds (repeated stratified k-fold) on the training rows; the
baseline is a logistic regression on the same preprocessed features and the same folds.

| metric | network CV | baseline CV | network test | baseline test |
|---|---|---|---|---|
{rows}

Accuracy is at 0.5. At the decision threshold {threshold:.2f} the test split gives sensitivity
{test["sensitivity"]:.3f} and specificity {test["specificity"]:.3f} (confusion matrix below).

## Decision threshold
{threshold:.2f}: {manifest.threshold.rule}. Clients may pass their own (`?threshold=`).

## Missing values (test split, fields blanked on purpose)
| missing | ROC AUC | Brier |
|---|---|---|
| nothing | {test["roc_auc"]:.3f} | {test["brier"]:.3f} |
{missing}

## Plots
"""
        + "\n".join(f"![{name}]({name})" for name in plots)
        + "\n"
    )
    (out / "README.md").write_text(text, encoding="utf-8")


def write_digits_report(
    version_dir: Path,
    manifest: Manifest,
    y_test: np.ndarray,
    proba: np.ndarray,
    histories: list[History],
    x_test: np.ndarray,
) -> None:
    out = version_dir / REPORT_DIR
    out.mkdir()
    m = manifest.metrics
    redrawn = m["test_redrawn"]
    plots = [
        plot_histories(histories, out / "loss_curves.png", "digits"),
        plot_confusion(m["test"]["confusion_matrix"], manifest.labels, out / "confusion_matrix.png", "test split"),
        plot_digit_errors(x_test, y_test, proba, out / "misclassified.png"),
    ]
    recall = " ".join(f"{d}: {r:.3f}" for d, r in m["test"]["per_class_recall"].items())
    threshold = manifest.threshold
    data, arch = manifest.data, manifest.architecture or {}
    text = (
        f"""# Model card: handwritten digits, version {manifest.version}

**What it does.** Reads one handwritten digit as an 8×8 grid of ink counts (0..16 per cell, as in
scikit-learn's digits / UCI optdigits) and returns the probability of each digit 0..9.

**Intended use.** Digits written in a single box and preprocessed like the training data (the service
turns a grey-level image into this form). Trained on 1,797 digits from 43 writers: not a general OCR
model, not for letters, several digits at once or images of documents.

## Data and split
- Source: `{data["source"]}`, {data["rows"]} images.
- A stratified split (seed {data["split"]["seed"]}): {data["split"]["train"]} for training and validation,
  {data["split"]["test"]} held out for the test figures.

## Model
An ensemble of {arch["members"]} small CNNs (channels {arch["channels"]}, dense {arch["hidden"]}, batch norm),
each trained with random ±{manifest.config["max_shift"]}-pixel shifts and early stopping on its own
random validation part; the ensemble averages their logits. Training batches take each digit as written
or as one of {manifest.config["redraw"]["views"]} redrawn copies (rotated, slanted, stretched, bolder or thinner, some
with a foot or a flag at their stroke ends, then converted exactly as the service converts an image:
`training/augment.py`), so that drawings and fonts unlike the training hands are read too; the test
figures are on the digits as written.

## Metrics
| | network | RBF SVC baseline |
|---|---|---|
| {m["cv_folds"]}-fold CV accuracy (training rows) | {_fmt(m["cv"]["accuracy"])} | {_fmt(m["baseline"]["accuracy"])} |
| held-out test accuracy | {m["test"]["accuracy"]:.4f} | {m["baseline"]["test"]["accuracy"]:.4f} |

Per-class recall (test): {recall}

## Minimum confidence
{threshold.value:.2f}: {threshold.rule}. On the test split {m["test"]["confident_share"]:.1%} of
predictions are confident, and those are {m["test"]["accuracy_when_confident"] or 0:.2%} correct. The test
digits redrawn as the training copies are: {redrawn["accuracy"]:.2%} read right, {redrawn["confident_share"]:.1%}
confident, {redrawn["accuracy_when_confident"] or 0:.2%} of those right.

## Plots
"""
        + "\n".join(f"![{name}]({name})" for name in plots)
        + "\n"
    )
    (out / "README.md").write_text(text, encoding="utf-8")
