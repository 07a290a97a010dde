"""Fitting the digits CNN and its RBF-SVC baseline on given rows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from service.contract import DIGIT_MAX_VALUE
from training.augment import pick_view, with_views
from training.config import DigitsConfig
from training.engine import History, fit, predict_logits, seed_everything
from training.models import DigitsCNN, LogitEnsemble
from training.preprocess import stratified_split


@dataclass
class FittedDigits:
    model: LogitEnsemble
    histories: list[History]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = predict_logits(self.model, torch.as_tensor(X, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)


def fit_member(
    views: np.ndarray, y: np.ndarray, config: DigitsConfig, *, seed: int, label: str | None = None
) -> tuple[DigitsCNN, History]:
    """One CNN: early stopping on its own random validation part (the digits as written), training
    batches of randomly chosen views (as written or redrawn, see `with_views`), randomly shifted."""
    train_rows, val_rows = stratified_split(y, config.val_size, seed)
    seed_everything(seed)  # the initial weights come from the global generator
    model = DigitsCNN(config.channels, config.hidden, config.dropout)
    history = fit(
        model,
        (torch.as_tensor(views[train_rows]), torch.as_tensor(y[train_rows])),
        (torch.as_tensor(views[val_rows, 0]), torch.as_tensor(y[val_rows])),
        config.optim,
        seed=seed,
        augment=partial(pick_view, max_shift=config.max_shift),
        label=label,
    )
    return model, history


def fit_digits(
    X: np.ndarray, y: np.ndarray, config: DigitsConfig, *, seed: int, label: str | None = None
) -> FittedDigits:
    """An ensemble of CNNs that differ in initial weights, validation part and augmentation draws:
    averaging their logits removes most of the seed-to-seed spread a single CNN shows here."""
    # Redrawn once for all members: each member validates on a different part, whose views it never uses.
    views = with_views(X, config.redraw, seed)
    members, histories = [], []
    for k in range(config.ensemble):
        member_label = f"{label} member {k + 1}/{config.ensemble}" if label else None
        model, history = fit_member(views, y, config, seed=seed * 100 + k, label=member_label)
        members.append(model)
        histories.append(history)
    return FittedDigits(model=LogitEnsemble(members), histories=histories)


def fit_baseline(X: np.ndarray, y: np.ndarray, config: DigitsConfig) -> GridSearchCV:
    """RBF SVC on pixel counts scaled to 0..1, C and gamma chosen by 3-fold CV on the rows given."""
    grid = {"C": list(config.baseline_c_grid), "gamma": list(config.baseline_gamma_grid)}
    return GridSearchCV(SVC(), grid, cv=3).fit(X / DIGIT_MAX_VALUE, y)
