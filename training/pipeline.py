"""Run the builds a configuration asks for and summarise what they produced."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import torch

from service.contract import MANIFEST_FILE, Manifest
from training.build import build
from training.config import RunConfig
from training.tasks import TASKS


def run(config: RunConfig, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Build every requested model; returns each new version's directory by model name."""
    # One thread: these networks are too small to gain from more, and the CV folds already use both cores.
    torch.set_num_threads(1)
    built = {}
    for name in config.models:
        started = time.perf_counter()
        built[name] = build(TASKS[name], config, log)
        log(f"[{name}] built in {time.perf_counter() - started:.1f} s")
    return built


def summary(version_dir: Path) -> list[str]:
    """The headline figures of one built version, as printable lines."""
    manifest = msgspec.json.decode((version_dir / MANIFEST_FILE).read_bytes(), type=Manifest)
    parity = manifest.parity["max_abs_diff"] if manifest.parity else {}
    return [
        f"{manifest.name} {manifest.version}  ({version_dir})",
        *TASKS[manifest.name].headline(manifest),
        f"  ONNX parity max |diff| {max(parity.values(), default=0.0):.2e}",
    ]
