"""The model card's explanation section: what `?explain=true` answers, seen over the whole test split.

Heart: mean |contribution| per feature (exact Shapley values of P(disease), training/explain.py). Digits:
the average occlusion map per predicted digit. Each appends its plot and a paragraph to report/README.md.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on build machines

import matplotlib.pyplot as plt
import numpy as np

from service.contract import BACKGROUND_FILE, REPORT_DIR


def _append(card: Path, text: str, plot: str) -> None:
    with card.open("a", encoding="utf-8") as handle:
        handle.write(f"\n## Explanations (`?explain=true`)\n{text}\n\n![{plot}]({plot})\n")


def write_heart_importance(version_dir: Path, names: list[str], contributions: np.ndarray, base: float) -> None:
    out = version_dir / REPORT_DIR
    importance = np.abs(contributions).mean(axis=0)
    order = np.argsort(importance)
    figure, axis = plt.subplots(figsize=(6, 4.5))
    axis.barh([names[i] for i in order], importance[order], color="C0")
    axis.set(
        xlabel="mean |contribution| to P(disease)",
        title=f"global importance ({len(contributions)} test patients)",
    )
    figure.tight_layout()
    figure.savefig(out / "global_importance.png", dpi=110)
    plt.close(figure)
    top = ", ".join(f"`{names[i]}` {importance[i]:.3f}" for i in order[::-1][:5])
    text = (
        f"Each answer can carry exact Shapley values of the served graph's probability against the "
        f"{BACKGROUND_FILE} rows (base value {base:.3f}, their mean P(disease)); they add up to the answer "
        f"minus the base value. Over the test split the largest mean |contribution| are {top}."
    )
    _append(out / "README.md", text, "global_importance.png")


def write_digit_maps(version_dir: Path, maps: np.ndarray, predicted: np.ndarray, side: int) -> None:
    out = version_dir / REPORT_DIR
    figure, axes = plt.subplots(2, 5, figsize=(10, 4.6))
    limit = float(np.abs(maps).max()) or 1.0
    for digit, axis in enumerate(axes.flat):
        chosen = maps[predicted == digit]
        mean = chosen.mean(axis=0).reshape(side, side) if len(chosen) else np.zeros((side, side))
        axis.imshow(mean, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set(title=f"{digit} ({len(chosen)} images)", xticks=[], yticks=[])
    figure.suptitle("average occlusion map per predicted digit (red: the pixel's ink supports the answer)")
    figure.tight_layout()
    figure.savefig(out / "explanation_maps.png", dpi=110)
    plt.close(figure)
    text = (
        "Each answer can carry an 8×8 occlusion map: per pixel, the probability of the predicted digit minus "
        f"the same with that pixel set to the training split's mean image ({BACKGROUND_FILE}). Occlusion "
        "values do not add up to the answer minus the base value. Averaged over the test split per "
        "predicted digit:"
    )
    _append(out / "README.md", text, "explanation_maps.png")
