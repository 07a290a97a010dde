"""Rebuild a trained torch model from an artifact version: for Python users, notebooks and tests.

This unpickles `preprocess.joblib`, so load only artifacts you trust; the service never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import torch
from torch import nn

from service.contract import PREPROCESS_FILE, WEIGHTS_FILE
from training.models import WithProbabilities
from training.tasks import TASKS


def load_bundle(version_dir: Path) -> dict[str, Any]:
    return joblib.load(Path(version_dir) / PREPROCESS_FILE)


def build_model(bundle: dict[str, Any]) -> nn.Module:
    """An untrained network with the architecture (and preprocessing buffers) the bundle describes."""
    return TASKS[bundle["model"]].network(bundle)


def load_model(version_dir: Path) -> nn.Module:
    """The trained network in eval mode, returning probabilities for raw ONNX-form rows."""
    model = build_model(load_bundle(version_dir))
    model.load_state_dict(torch.load(Path(version_dir) / WEIGHTS_FILE, weights_only=True))
    return WithProbabilities(model).eval()
