"""Fitting the digits CNN and its RBF-SVC baseline on given rows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from service.contract import DIGIT_MAX_VALUE
from training.config import DigitsConfig
from training.engine import EpochPrinter, History, fit, predict_logits, seed_everything
from training.models import DigitsCNN, random_shift
from training.preprocess import stratified_split


@dataclass
class FittedDigits:
    model: DigitsCNN
    history: History
    val_rows: np.ndarray  # indices (into the rows it was fitted on) used for early stopping

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = predict_logits(self.model, torch.as_tensor(X, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)


def fit_digits(
    X: np.ndarray, y: np.ndarray, config: DigitsConfig, *, seed: int, label: str | None = None
) -> FittedDigits:
    train_rows, val_rows = stratified_split(y, config.val_size, seed)
    seed_everything(seed)  # the initial weights come from the global generator
    model = DigitsCNN(config.channels, config.hidden, config.dropout)
    printer = EpochPrinter(label, config.optim.max_epochs) if label else None
    history = fit(
        model,
        (torch.as_tensor(X[train_rows]), torch.as_tensor(y[train_rows])),
        (torch.as_tensor(X[val_rows]), torch.as_tensor(y[val_rows])),
        config.optim,
        seed=seed,
        augment=partial(random_shift, max_shift=config.max_shift),
        on_epoch=printer,
    )
    if printer:
        printer.close()
    return FittedDigits(model=model, history=history, val_rows=val_rows)


def fit_baseline(X: np.ndarray, y: np.ndarray, config: DigitsConfig) -> GridSearchCV:
    """RBF SVC on pixel counts scaled to 0..1, C and gamma chosen by 3-fold CV on the rows given."""
    grid = {"C": list(config.baseline_c_grid), "gamma": list(config.baseline_gamma_grid)}
    return GridSearchCV(SVC(), grid, cv=3).fit(X / DIGIT_MAX_VALUE, y)
