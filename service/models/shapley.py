"""Exact interventional Shapley values of one model output, for any number of rows, with one model call.

The game of a row x against a background set B: v(S) = mean over b in B of f(x_S, b_rest), the model on x's
values for the features in S and b's for the others. phi is exact (no sampling). Two facts keep it cheap:
- v is a mean over b of games v_b, and Shapley values are linear, so phi = mean over b of phi_b;
- in v_b every feature where x and b agree (the same value, or both missing) changes nothing: it is a
  dummy player with phi_b = 0, and the other players' values are those of the smaller game without it.
So per (row, background row) only the 2^d coalitions of the d features that differ are built (d = 13 at
most for heart: 8,192 rows), as one matrix for every row and background row; the caller runs the model
once on it and hands the outputs back to `ShapleyPlan.contributions`.

Efficiency holds by construction: sum(phi) = mean_b [f(x) - f(b)] = f(x) - mean_b f(b), the answer minus
the base value, to float32 rounding of the graph's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import factorial

import numpy as np


@cache
def coalitions(players: int) -> np.ndarray:
    """(2^n, n) booleans: row m is the coalition whose bit i says whether player i is in it."""
    return ((np.arange(1 << players)[:, None] >> np.arange(players)) & 1).astype(bool)


@cache
def weights(players: int) -> np.ndarray:
    """(2^n, n) so that phi = values @ weights, values[m] the value of coalition m: player i gets
    +|S-1|!(n-|S|)!/n! from each S that holds it and -|S|!(n-|S|-1)!/n! from each S that does not."""
    member = coalitions(players)
    size = member.sum(axis=1)
    weight = np.array([factorial(s) * factorial(players - s - 1) / factorial(players) for s in range(players)])
    with_i = weight[np.clip(size - 1, 0, players - 1)][:, None]
    without_i = weight[np.clip(size, 0, players - 1)][:, None]
    return np.where(member, with_i, -without_i)


@dataclass(frozen=True)
class ShapleyPlan:
    """The coalition rows of a batch of explanations, and how to fold the model's outputs on them."""

    rows: np.ndarray  # float32, what the model is run on (once)
    # per block: (explained row, its differing columns, first coalition row, number of rows)
    blocks: list[tuple[int, np.ndarray, int, int]]
    shape: tuple[int, int]
    background_rows: int

    def contributions(self, outputs: np.ndarray) -> np.ndarray:
        """(rows, features) float64 Shapley values from the model's outputs (one score per coalition row)."""
        values = np.asarray(outputs, dtype=np.float64).reshape(-1)
        phi = np.zeros(self.shape)
        for row, columns, start, count in self.blocks:
            phi[row, columns] += values[start : start + count] @ weights(len(columns))
        return phi / self.background_rows


def plan(x: np.ndarray, background: np.ndarray) -> ShapleyPlan:
    """The coalition rows for explaining every row of `x` (NaN = missing) against `background`."""
    x = np.asarray(x, dtype=np.float32)
    background = np.asarray(background, dtype=np.float32)
    same = (x[:, None, :] == background[None, :, :]) | (np.isnan(x)[:, None, :] & np.isnan(background)[None, :, :])
    pieces, blocks, start = [], [], 0
    for row in range(len(x)):
        for index, base in enumerate(background):
            columns = np.flatnonzero(~same[row, index])
            if not len(columns):
                continue  # x equals this background row: every player is a dummy in its game
            member = coalitions(len(columns))
            block = np.repeat(base[None, :], len(member), axis=0)
            block[:, columns] = np.where(member, x[row, columns], base[columns])
            pieces.append(block)
            blocks.append((row, columns, start, len(member)))
            start += len(member)
    rows = np.concatenate(pieces) if pieces else np.empty((0, x.shape[1]), dtype=np.float32)
    return ShapleyPlan(rows=rows, blocks=blocks, shape=x.shape, background_rows=len(background))
