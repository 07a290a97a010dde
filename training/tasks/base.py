"""The Task interface: everything the generic build (training/build.py) needs to know about one model.

The build owns the sequence (split → cross-validation with the final fit alongside → threshold → test
metrics → ONNX export → parity → files → manifest → report → publish); a Task owns every step's
model-specific part: its data, networks, metrics, threshold rule, reference rows and model card.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from torch import nn

from service.contract import Drift, Manifest, ModelInputs, ModelOutputs, TensorSpec, Threshold
from training.config import RunConfig
from training.engine import History


class Dataset(Protocol):
    """What a task's loader returns: the ONNX-form matrix, the labels and where they came from."""

    @property
    def X(self) -> np.ndarray: ...  # noqa: N802 - the usual name for a design matrix

    @property
    def y(self) -> np.ndarray: ...

    @property
    def source(self) -> str: ...

    @property
    def sha256(self) -> str: ...


class TaskConfig(Protocol):
    """The part of a model's config (config.py) that the generic build reads."""

    @property
    def seed(self) -> int: ...

    @property
    def test_size(self) -> float: ...


class Fitted(Protocol):
    """A trained network (logits out) with its per-member training histories."""

    model: nn.Module
    histories: list[History]

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def batch_tensor(name: str, *dims: int, encoding: str | None = None, meaning: str | None = None) -> TensorSpec:
    """An ONNX input or output as every model's graph has it: float32, the first dimension the batch."""
    return TensorSpec(name=name, dtype="float32", shape=[-1, *dims], encoding=encoding, meaning=meaning)


def ensemble_architecture(member: type[nn.Module], config: Any, *fields: str) -> dict[str, Any]:
    """A LogitEnsemble of `config.ensemble` networks of class `member`, described for the manifest by
    the config fields that shape each member (tuples as lists, as JSON holds them)."""
    shaped_by = {name: getattr(config, name) for name in fields}
    return {
        "class": f"LogitEnsemble[{member.__name__}]",
        "members": config.ensemble,
        **{name: list(value) if isinstance(value, tuple) else value for name, value in shaped_by.items()},
    }


@dataclass
class Trained:
    """What the build has learned by the time the task evaluates, exports and describes the model."""

    data: Any  # the task's Dataset (its own type, so the task can reach its extra fields)
    config: Any  # the task's config dataclass
    dev: np.ndarray  # rows for training: cross-validation, the final fit, the threshold
    test: np.ndarray  # held-out rows, used once for the test metrics
    fitted: Fitted
    cv: dict[str, Any]  # what the task's cross_validate returned ("cv", "baseline", "folds", ...)
    threshold: Threshold

    @property
    def x_test(self) -> np.ndarray:
        return self.data.X[self.test]

    @property
    def y_test(self) -> np.ndarray:
        return self.data.y[self.test]

    @property
    def y_dev(self) -> np.ndarray:
        return self.data.y[self.dev]


@dataclass
class Evaluation:
    """The held-out test: the task's sections of the manifest's `metrics` and what its report plots."""

    metrics: dict[str, Any]  # follows "cv" and "cv_folds", which the build writes for every task
    probabilities: np.ndarray  # the network's on the test split
    monitored: np.ndarray  # per test answer, the probability the service's drift histogram compares
    baseline_probabilities: np.ndarray | None = None


class Task(ABC):
    """One model. Subclasses set the class attributes and implement the methods; see tasks/heart.py."""

    name: ClassVar[str]  # the artifact directory and the manifest's `name`
    kind: ClassVar[Literal["binary", "multiclass"]]  # the manifest's `task`
    rows_are: ClassVar[str]  # what one row is, for the log ("patients")
    labels: ClassVar[tuple[str, ...]]
    inputs: ClassVar[ModelInputs]
    outputs: ClassVar[ModelOutputs]

    # The model's fitting functions, set with staticmethod(...): plain module functions, so the calls
    # the cross-validation sends to its worker processes pickle by name.
    # fit(X, y, config, *, seed, label=None) -> Fitted: the network fitted on these rows.
    fit: ClassVar[Callable[..., Fitted]]
    # cross_validate(X, y, config, log, alongside=final_fit) -> network and baseline on the same folds:
    # {"cv", "baseline", "folds", "oof_probabilities", "alongside": final_fit's result, run in the same pool}.
    cross_validate: ClassVar[Callable[..., dict[str, Any]]]

    @abstractmethod
    def config(self, run: RunConfig) -> TaskConfig:
        """This model's part of the run configuration."""

    @abstractmethod
    def load(self, run: RunConfig) -> Dataset: ...

    @abstractmethod
    def choose_threshold(self, y: np.ndarray, oof_probabilities: np.ndarray, config: Any) -> Threshold: ...

    @abstractmethod
    def evaluate(self, trained: Trained) -> Evaluation:
        """Test metrics of the network and its baseline (fitted on the training rows)."""

    @abstractmethod
    def reference(self, trained: Trained) -> tuple[list[dict[str, Any]], np.ndarray]:
        """reference.json's rows: request bodies as the API takes them, and the same rows in ONNX form."""

    @abstractmethod
    def architecture(self, config: Any) -> dict[str, Any]:
        """The network's shape, for the manifest and for `network` to rebuild it."""

    def served_network(self, model: nn.Module) -> nn.Module:
        """The network model.onnx is exported from: the trained one, or the same function in a form that
        runs faster (the export's parity check compares it with the trained one, so it must agree)."""
        return model

    @abstractmethod
    def network(self, payload: dict[str, Any]) -> nn.Module:
        """An untrained network shaped as a preprocess.joblib payload describes (training/reload.py)."""

    @abstractmethod
    def preprocess(self, trained: Trained) -> dict[str, Any]:
        """preprocess.joblib's model-specific entries (between "architecture" and "config")."""

    def data_facts(self, trained: Trained) -> dict[str, Any]:
        """Extra facts about the data for the manifest's `data` (between "rows" and "split")."""
        return {}

    def drift(self, trained: Trained) -> Drift | None:
        """The manifest's `drift`: reference distributions of the columns the service's Model watches
        (its `drift_columns`), from training rows only (service.drift computes the shares)."""
        return None

    @abstractmethod
    def background(self, trained: Trained) -> tuple[np.ndarray, dict[str, Any]]:
        """background.json's rows (model.onnx's input encoding, from training rows only) and the manifest's
        `explanation` entry without its `file` and `rows`: {"rule", "method", "unit", "columns"}."""

    @abstractmethod
    def write_report(self, staging: Path, manifest: Manifest, trained: Trained, evaluation: Evaluation) -> None:
        """The model card and plots under report/ (model.onnx and background.json are in `staging`)."""

    @abstractmethod
    def headline(self, manifest: Manifest) -> list[str]:
        """The few lines `python -m training` prints about a built version."""
