"""Fitted preprocessing and data splits.

`HeartPreprocessor` follows scikit-learn's estimator conventions (`fit` returns self, learned
state ends in `_`). It maps the raw ONNX-form matrix (category codes, NaN for missing) to the
network's inputs: standardised numbers with median imputation, a missing-indicator per nullable
number, and one-hot categories whose all-zero row means "missing". `models.TabularEncoder` does
the same arithmetic in torch from the fitted state, so the exported graph takes raw features.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from service.contract import HEART_FEATURES, FeatureSpec


class HeartPreprocessor(TransformerMixin, BaseEstimator):
    """Impute, standardise, flag missing numbers and one-hot encode categories."""

    def __init__(self, features: tuple[FeatureSpec, ...] = HEART_FEATURES) -> None:
        self.features = features

    def fit(self, X: np.ndarray, y: object = None) -> HeartPreprocessor:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"expected a matrix with {len(self.features)} columns, got shape {X.shape}")
        numeric = [i for i, spec in enumerate(self.features) if spec.kind == "number"]
        self.numeric_columns_ = np.array(numeric, dtype=np.int64)
        values = X[:, self.numeric_columns_]
        medians = np.nanmedian(values, axis=0)
        if np.isnan(medians).any():
            empty = [self.features[numeric[i]].name for i in np.flatnonzero(np.isnan(medians))]
            raise ValueError(f"no observed values to fit column(s) {empty}")
        filled = np.where(np.isnan(values), medians, values)
        self.medians_ = medians
        self.means_ = filled.mean(axis=0)
        scales = filled.std(axis=0)
        self.scales_ = np.where(scales > 0, scales, 1.0)
        self.indicator_columns_ = np.array(
            [i for i, spec in enumerate(self.features) if spec.kind == "number" and spec.nullable], dtype=np.int64
        )
        # Category levels come from the contract, not from the training rows: a level that is rare
        # (restecg 1 has 4 Cleveland patients) still gets its own column.
        self.onehot_columns_ = np.array(
            [i for i, spec in enumerate(self.features) if spec.kind == "category" for _ in spec.codes], dtype=np.int64
        )
        self.onehot_codes_ = np.array(
            [code for spec in self.features if spec.kind == "category" for code in spec.codes], dtype=np.float64
        )
        self.n_features_in_ = X.shape[1]
        self.n_features_out_ = len(numeric) + len(self.indicator_columns_) + len(self.onehot_codes_)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "medians_")
        X = np.asarray(X, dtype=np.float64)
        values = X[:, self.numeric_columns_]
        standardised = (np.where(np.isnan(values), self.medians_, values) - self.means_) / self.scales_
        indicators = np.isnan(X[:, self.indicator_columns_]).astype(np.float64)
        onehot = (X[:, self.onehot_columns_] == self.onehot_codes_).astype(np.float64)
        return np.concatenate([standardised, indicators, onehot], axis=1).astype(np.float32)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "medians_")
        names = [self.features[i].name for i in self.numeric_columns_]
        names += [f"{self.features[i].name}_missing" for i in self.indicator_columns_]
        names += [
            f"{self.features[i].name}={self.features[i].categories[list(self.features[i].codes).index(c)]}"
            for i, c in zip(self.onehot_columns_, self.onehot_codes_, strict=True)
        ]
        return np.array(names, dtype=object)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out) with `fraction` of the rows held out, class balance preserved."""
    indices = np.arange(len(y))
    kept, held_out = train_test_split(indices, test_size=fraction, stratify=y, random_state=seed)
    return np.sort(kept), np.sort(held_out)
