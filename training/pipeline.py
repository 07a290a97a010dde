"""Run the builds a configuration asks for and summarise what they produced."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from service.contract import MANIFEST_FILE
from training.build_digits import build_digits
from training.build_heart import build_heart
from training.config import RunConfig

BUILDERS: dict[str, Callable[[RunConfig, Callable[[str], None]], Path]] = {
    "heart": build_heart,
    "digits": build_digits,
}


def run(config: RunConfig, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Build every requested model; returns each new version's directory by model name."""
    # One thread: these networks are too small to gain from more, and the CV folds already use both cores.
    torch.set_num_threads(1)
    built = {}
    for name in config.models:
        started = time.perf_counter()
        built[name] = BUILDERS[name](config, log)
        log(f"[{name}] built in {time.perf_counter() - started:.1f} s")
    return built


def summary(version_dir: Path) -> list[str]:
    """The headline figures of one built version, as printable lines."""
    manifest: dict[str, Any] = json.loads((version_dir / MANIFEST_FILE).read_text())
    m = manifest["metrics"]
    lines = [f"{manifest['name']} {manifest['version']}  ({version_dir})"]
    if manifest["name"] == "heart":
        for key in ("roc_auc", "accuracy", "brier", "log_loss"):
            lines.append(
                f"  {key:<9} CV {m['cv'][key]['mean']:.3f} ± {m['cv'][key]['std']:.3f}   "
                f"baseline CV {m['baseline'][key]['mean']:.3f}   test {m['test'][key]:.3f}"
            )
        lines.append(
            f"  threshold {manifest['threshold']['value']:.2f}: sensitivity {m['test']['sensitivity']:.3f}, "
            f"specificity {m['test']['specificity']:.3f} on the test split"
        )
    else:
        lines.append(
            f"  accuracy  CV {m['cv']['accuracy']['mean']:.4f} ± {m['cv']['accuracy']['std']:.4f}   "
            f"baseline CV {m['baseline']['accuracy']['mean']:.4f}   test {m['test']['accuracy']:.4f}   "
            f"baseline test {m['baseline']['test']['accuracy']:.4f}"
        )
        lines.append(
            f"  min confidence {manifest['threshold']['value']:.2f}: "
            f"{m['test']['confident_share']:.1%} of test predictions confident"
        )
    lines.append(f"  ONNX parity max |diff| {max(manifest['parity']['max_abs_diff'].values()):.2e}")
    return lines
