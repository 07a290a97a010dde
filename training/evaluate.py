"""Metrics, cross-validation against a baseline on the same folds, and decision thresholds."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.metrics import accuracy_score, brier_score_loss, confusion_matrix, log_loss, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from service.contract import DIGIT_MAX_VALUE, SweepPoint, Threshold
from training.config import DigitsConfig, HeartConfig

# Upper bounds of the predicted-probability histogram: the manifest records the test split's
# distribution in these buckets, the service's metrics use the same ones, so drift is comparable.
PROBABILITY_BUCKETS = [round(0.1 * i, 1) for i in range(1, 11)]
# Probabilities are clipped before log loss so one confident miss cannot make it infinite.
_EPS = 1e-7


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, accuracy at 0.5, Brier score and log loss of P(positive) `p`."""
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
    }


def confusion(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> list[list[int]]:
    return confusion_matrix(y, predicted, labels=list(range(n_classes))).tolist()


def mean_std(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {"mean": float(np.mean([r[key] for r in rows])), "std": float(np.std([r[key] for r in rows]))}
        for key in rows[0]
    }


def n_jobs() -> int:
    """Folds run in parallel on up to two cores: torch runs one thread per process here."""
    return max(1, min(2, os.cpu_count() or 1))


def _single_threaded(call: Callable[[], Any]) -> Any:
    import torch

    torch.set_num_threads(1)
    return call()


def run_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run independent fits in worker processes, results in the order of `calls`."""
    return Parallel(n_jobs=n_jobs())(delayed(_single_threaded)(call) for call in calls)


def _with_alongside(calls: list[Callable[[], Any]], alongside: Callable[[], Any] | None) -> tuple[Any, list[Any]]:
    """Run the folds and, first (it is the longest job), the extra call; split their results."""
    if alongside is None:
        return None, run_parallel(calls)
    extra, *results = run_parallel([alongside, *calls])
    return extra, results


def _heart_fold(
    X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, config: HeartConfig, seed: int
) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
    from training.heart import fit_baseline, fit_heart

    fitted = fit_heart(X[train], y[train], config, seed=seed)
    p = fitted.predict_proba(X[test])
    preprocessor, baseline = fit_baseline(X[train], y[train], config)
    p_base = baseline.predict_proba(preprocessor.transform(X[test]))[:, 1]
    return binary_metrics(y[test], p), binary_metrics(y[test], p_base), p


def cross_validate_heart(
    X: np.ndarray,
    y: np.ndarray,
    config: HeartConfig,
    log: Callable[[str], None] = print,
    alongside: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Repeated stratified k-fold on the training rows for the network and the baseline, plus the
    out-of-fold probabilities (averaged over repeats) on which the threshold is chosen.

    `alongside` (the final fit) runs in the same worker pool, so no core idles while the last
    folds finish; its result is returned as "alongside"."""
    splitter = RepeatedStratifiedKFold(n_splits=config.cv_splits, n_repeats=config.cv_repeats, random_state=config.seed)
    folds = list(splitter.split(X, y))
    log(f"[heart] cross-validating {len(folds)} folds ({config.cv_splits}×{config.cv_repeats}) on {n_jobs()} cores")
    calls = [
        partial(_heart_fold, X, y, train, test, config, config.seed + 1000 + k) for k, (train, test) in enumerate(folds)
    ]
    extra, results = _with_alongside(calls, alongside)
    oof_sum, oof_count = np.zeros(len(y)), np.zeros(len(y))
    for (_, test), (_, _, p) in zip(folds, results, strict=True):
        oof_sum[test] += p
        oof_count[test] += 1
    return {
        "cv": mean_std([r[0] for r in results]),
        "baseline": {
            "model": f"LogisticRegression(C={config.baseline_c}) on the same preprocessed features",
            **mean_std([r[1] for r in results]),
        },
        "folds": len(folds),
        "oof_probabilities": oof_sum / oof_count,
        "alongside": extra,
    }


def choose_threshold(y: np.ndarray, p: np.ndarray, false_negative_cost: float) -> Threshold:
    """The threshold minimising `false_negative_cost * FN + FP` over a 0.01 grid; ties take the
    middle of the best plateau so the choice does not sit on an edge."""
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    costs = np.array([false_negative_cost * np.sum((p < t) & (y == 1)) + np.sum((p >= t) & (y == 0)) for t in grid])
    best = np.flatnonzero(costs == costs.min())
    threshold = float(grid[best[len(best) // 2]])
    positives, negatives = max(1, int(np.sum(y == 1))), max(1, int(np.sum(y == 0)))
    sweep = [
        SweepPoint(
            threshold=float(t),
            sensitivity=float(np.sum((p >= t) & (y == 1)) / positives),
            specificity=float(np.sum((p < t) & (y == 0)) / negatives),
        )
        for t in grid
    ]
    return Threshold(
        value=threshold,
        rule=(
            f"minimise {false_negative_cost:g}·FN + FP on out-of-fold cross-validation probabilities of the "
            f"training rows (a missed disease costs {false_negative_cost:g} false alarms)"
        ),
        expected_cost_per_patient=float(costs.min() / len(y)),
        sweep=sweep,
    )


def _digits_fold(
    X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, config: DigitsConfig, seed: int
) -> tuple[float, float, np.ndarray]:
    from training.augment import with_views
    from training.digits import fit_baseline, fit_digits

    fitted = fit_digits(X[train], y[train], config, seed=seed)
    # The held-out digits as written and redrawn (other draws than any network's training views): the
    # answers the minimum confidence is chosen on, as the service gets both kinds.
    views = with_views(X[test], config.redraw, seed + 500)
    proba = fitted.predict_proba(views.reshape(-1, views.shape[-1])).reshape(*views.shape[:2], -1)
    baseline = fit_baseline(X[train], y[train], config)
    return (
        float(accuracy_score(y[test], proba[:, 0].argmax(1))),
        float(accuracy_score(y[test], baseline.predict(X[test] / DIGIT_MAX_VALUE))),
        proba,
    )


def cross_validate_digits(
    X: np.ndarray,
    y: np.ndarray,
    config: DigitsConfig,
    log: Callable[[str], None] = print,
    alongside: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Stratified k-fold on the training rows for the CNN ensemble and the SVC baseline; see
    `cross_validate_heart` for `alongside`. "oof_probabilities" is [rows, 1 + views, 10]: each training
    row's out-of-fold answer as written, then on its redrawn views (training/augment.py)."""
    splitter = StratifiedKFold(n_splits=config.cv_splits, shuffle=True, random_state=config.seed)
    folds = list(splitter.split(X, y))
    log(f"[digits] cross-validating {len(folds)} folds on {n_jobs()} cores")
    calls = [
        partial(_digits_fold, X, y, train, test, config, config.seed + 1000 + k)
        for k, (train, test) in enumerate(folds)
    ]
    extra, results = _with_alongside(calls, alongside)
    oof = np.zeros((len(y), 1 + max(0, config.redraw.views), 10))
    for (_, test), (_, _, proba) in zip(folds, results, strict=True):
        oof[test] = proba
    return {
        "cv": {
            "accuracy": {"mean": float(np.mean([r[0] for r in results])), "std": float(np.std([r[0] for r in results]))}
        },
        "baseline": {
            "model": "RBF SVC, C and gamma tuned by 3-fold grid search on each fold's training rows",
            "accuracy": {
                "mean": float(np.mean([r[1] for r in results])),
                "std": float(np.std([r[1] for r in results])),
            },
        },
        "folds": len(folds),
        "oof_probabilities": oof,
        "alongside": extra,
    }


def choose_min_confidence(y: np.ndarray, proba: np.ndarray, precision: float) -> Threshold:
    """The lowest top-class probability above which out-of-fold answers were right at least `precision`
    of the time; answers below it are flagged as not confident.

    `proba` is [rows, 1 + views, 10] (see `cross_validate_digits`): the answers on the digits as
    written and on their redrawn views count alike. On the digits as written alone the networks were
    99.6 % right at any confidence, so that rule chose 0.01 and flagged nothing; the redrawn views are
    what the service is sent (other hands, pens, slants, fonts), and on them low confidence does go
    with wrong answers."""
    proba = proba.reshape(-1, proba.shape[-1])
    y = np.repeat(y, len(proba) // len(y))
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    threshold = 1.0
    for t in np.round(np.arange(0.99, 0.0, -0.01), 2):
        kept = confidence >= t
        if kept.any() and correct[kept].mean() >= precision:
            threshold = float(t)
        else:
            break
    kept = confidence >= threshold
    return Threshold(
        value=threshold,
        rule=(
            f"lowest top-class probability (0.01 grid, scanned down from 0.99) at which out-of-fold "
            f"answers on the training rows, as written and redrawn (rotated, slanted, stretched, bold or "
            f"thin, through the service's image conversion), were at least {precision:.1%} correct"
        ),
        coverage=float(kept.mean()),
        accuracy_when_confident=float(correct[kept].mean()) if kept.any() else None,
    )


def probability_histogram(p: np.ndarray) -> dict[str, Any]:
    """Cumulative counts per upper bound: the shape of a Prometheus histogram of the same values."""
    return {
        "le": PROBABILITY_BUCKETS,
        "cumulative_counts": [int(np.sum(p <= b + 1e-12)) for b in PROBABILITY_BUCKETS],
        "count": len(p),
    }
