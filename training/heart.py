"""Fitting the heart-disease model and its logistic-regression baseline on given rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from service.contract import HEART_FEATURES
from training.config import HeartConfig
from training.engine import Augment, History, fit, predict_logits, seed_everything
from training.models import HeartMLP, LogitEnsemble, TabularEncoder
from training.preprocess import HeartPreprocessor

NULLABLE_COLUMNS = [i for i, spec in enumerate(HEART_FEATURES) if spec.nullable]


@dataclass
class FittedHeart:
    model: LogitEnsemble
    preprocessors: list[HeartPreprocessor]
    histories: list[History]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(disease) for raw ONNX-form rows."""
        logits = predict_logits(self.model, torch.as_tensor(X, dtype=torch.float32))
        return torch.sigmoid(logits).numpy().astype(np.float64)


def mask_missing(rate: float) -> Augment:
    """A training-batch augmentation that blanks each nullable feature with probability `rate`."""
    columns = torch.tensor(NULLABLE_COLUMNS)

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if rate <= 0:
            return x
        drop = torch.rand((x.shape[0], len(columns)), generator=generator) < rate
        x = x.clone()
        x[:, columns] = torch.where(drop, torch.full_like(x[:, columns], float("nan")), x[:, columns])
        return x

    return augment


def fit_member(
    X: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    config: HeartConfig,
    *,
    seed: int,
    label: str | None = None,
) -> tuple[HeartMLP, HeartPreprocessor, History]:
    """One network: preprocessor fitted on `train_rows`, early stopping on `val_rows`."""
    preprocessor = HeartPreprocessor().fit(X[train_rows])
    seed_everything(seed)  # the initial weights come from the global generator
    model = HeartMLP(TabularEncoder.from_preprocessor(preprocessor), config.hidden, config.dropout)
    history = fit(
        model,
        (torch.as_tensor(X[train_rows]), torch.as_tensor(y[train_rows])),
        (torch.as_tensor(X[val_rows]), torch.as_tensor(y[val_rows])),
        config.optim,
        seed=seed,
        augment=mask_missing(config.missing_rate),
        label=label,
    )
    return model, preprocessor, history


def fit_heart(X: np.ndarray, y: np.ndarray, config: HeartConfig, *, seed: int, label: str | None = None) -> FittedHeart:
    """A cross-fitted ensemble: member k validates on fold k and trains on the others, so every
    row trains most members and early stopping never sees a row its member trained on."""
    folds = StratifiedKFold(n_splits=config.ensemble, shuffle=True, random_state=seed).split(X, y)
    members, preprocessors, histories = [], [], []
    for k, (train_rows, val_rows) in enumerate(folds):
        member_label = f"{label} member {k + 1}/{config.ensemble}" if label else None
        model, preprocessor, history = fit_member(
            X, y, train_rows, val_rows, config, seed=seed * 100 + k, label=member_label
        )
        members.append(model)
        preprocessors.append(preprocessor)
        histories.append(history)
    return FittedHeart(model=LogitEnsemble(members), preprocessors=preprocessors, histories=histories)


def fit_baseline(X: np.ndarray, y: np.ndarray, config: HeartConfig) -> tuple[HeartPreprocessor, LogisticRegression]:
    """Logistic regression on the same preprocessed features, fitted on the same rows."""
    preprocessor = HeartPreprocessor().fit(X)
    model = LogisticRegression(C=config.baseline_c, max_iter=2000).fit(preprocessor.transform(X), y)
    return preprocessor, model
