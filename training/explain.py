"""Explanations at training time: the background that `?explain=true` explains against (background.json),
and the model card's global views (mean |contribution| per heart feature; the digits' average map per class).

The service computes explanations itself (service/models/shapley.py); training may not import it (only
`service.contract`), so the model card's values come from this deliberately plain implementation over the
exported graph: every one of the 2^13 coalitions for every background row, no shortcut. Both compute the
same quantity, which tests/service/test_explain_heart.py checks against the `shap` package.
"""

from __future__ import annotations

from functools import cache
from math import factorial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from sklearn.cluster import KMeans

# Heart: 4 background rows. An explanation costs 2^d coalition rows per background row, d the number of features
# where the patient differs from it (8,192 at most; service/models/shapley.py): the background's size is the
# explanation's cost. CPU time of Served.explain_now over 60 reference patients, on the shared 2-core machine
# under other load (2026-11-28): 4 rows p50 3.9 ms, mean 4.5 ms (3,296 coalition rows p50); 8 rows p50 7.2 ms,
# mean 7.9 ms (6,240 rows p50, of 65,536 for the full game); 16 rows p50 ~16 ms. Server CPU per explained
# request over HTTP in the same conditions: 4 rows 7.4 ms, 8 rows 13.4 ms. What the larger sizes buy, measured
# against the same values with every complete Cleveland patient as the background (30 reference patients, 3
# seeds; mean |difference| / mean |contribution|): 2 rows 0.26, 4 rows 0.25, 6 rows 0.29, 8 rows 0.24, 12 rows
# 0.19, 16 rows 0.16. Equal-weight medoids improve slowly: 8 rows cost ~1.8x 4's for 0.24 instead of 0.25 (and
# a base value further from the full one), and the sizes that are clearly better (12-16) miss the cost goal
# (p50 <= 15 ms, >= 100 explained patients/s of one worker). So 4 stays.
HEART_BACKGROUND_ROWS = 4
HEART_BACKGROUND_RULE = (
    f"k-medoids of the training split: k-means (k={HEART_BACKGROUND_ROWS}, n_init=10, the run's seed) on the "
    "complete training rows standardised per column, each centre replaced by its nearest training patient "
    "(real patients, so every category is a real code)"
)
DIGITS_BACKGROUND_RULE = "the mean image of the training split (one row of 64 mean ink counts)"


def heart_background(x_dev: np.ndarray, seed: int, rows: int = HEART_BACKGROUND_ROWS) -> np.ndarray:
    """`rows` training patients that stand for the training split (see HEART_BACKGROUND_RULE)."""
    complete = x_dev[~np.isnan(x_dev).any(axis=1)].astype(np.float64)
    scale = complete.std(axis=0)
    scaled = (complete - complete.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    centres = KMeans(n_clusters=rows, n_init=10, random_state=seed).fit(scaled).cluster_centers_
    chosen: list[int] = []
    for centre in centres:
        distances = ((scaled - centre) ** 2).sum(axis=1)
        distances[chosen] = np.inf  # distinct patients, even if two centres share a nearest one
        chosen.append(int(distances.argmin()))
    return complete[chosen].astype(np.float32)


def digits_background(x_dev: np.ndarray) -> np.ndarray:
    return x_dev.astype(np.float64).mean(axis=0, keepdims=True).astype(np.float32)


def background_payload(rule: str, columns: list[str], rows: np.ndarray) -> dict[str, Any]:
    """background.json: the rows in model.onnx's input encoding, with how they were chosen."""
    return {"rule": rule, "columns": columns, "rows": rows.astype(np.float64).tolist()}


def _session(onnx_path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])


@cache
def shapley_weights(players: int) -> np.ndarray:
    """(2^n, n): phi = values @ W, where values[mask] is the game's value of the coalition `mask`."""
    masks = np.arange(1 << players)
    member = (masks[:, None] >> np.arange(players)) & 1
    size = member.sum(axis=1)
    weight = np.array([factorial(s) * factorial(players - s - 1) / factorial(players) for s in range(players)])
    plus = np.where(member == 1, weight[np.maximum(size - 1, 0)][:, None], 0.0)
    minus = np.where(member == 0, weight[np.minimum(size, players - 1)][:, None], 0.0)
    return plus - minus


def heart_contributions(onnx_path: Path, x: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact interventional Shapley values of P(disease) for every row of `x`, and the base value."""
    session, features = _session(onnx_path), x.shape[1]
    name = session.get_inputs()[0].name
    masks = ((np.arange(1 << features)[:, None] >> np.arange(features)) & 1).astype(bool)
    weights = shapley_weights(features)
    base = float(session.run(None, {name: background})[0].reshape(-1).mean())
    contributions = np.empty(x.shape, dtype=np.float64)
    for index, row in enumerate(x):
        rows = np.where(masks[:, None, :], row[None, None, :], background[None, :, :]).reshape(-1, features)
        values = session.run(None, {name: rows.astype(np.float32)})[0].reshape(len(masks), -1).mean(axis=1)
        contributions[index] = values.astype(np.float64) @ weights
    return contributions, base


def digit_maps(onnx_path: Path, x: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occlusion maps: per image and pixel, P(predicted digit) minus the same with that pixel set to the
    background's; and the predicted digits."""
    session, pixels = _session(onnx_path), x.shape[1]
    name = session.get_inputs()[0].name
    occluded = np.repeat(x[:, None, :], pixels + 1, axis=1)
    occluded[:, 1:, :][:, np.arange(pixels), np.arange(pixels)] = background[0]
    outputs = session.run(None, {name: occluded.reshape(-1, pixels).astype(np.float32)})[0]
    outputs = outputs.reshape(len(x), pixels + 1, -1)
    predicted = outputs[:, 0, :].argmax(axis=1)
    chosen = outputs[np.arange(len(x)), :, predicted]  # (images, 1 + pixels)
    return chosen[:, :1] - chosen[:, 1:], predicted
