"""Input drift: the reference distributions training records, and the bucket counts the service folds live.

One function decides which bucket a value falls in (`BucketFolder`), and both halves use it: training to
compute the reference shares of its training split, the service to count live rows. So the two cannot
disagree about a bucket's edge, and a population drawn like the training split gives the reference shares.

A column (a heart feature, or one statistic of a digit image) has sorted `edges`: bucket i holds the
values v with edges[i-1] < v <= edges[i], the first bucket everything up to edges[0] and the last
everything above the last edge (open-ended), plus one bucket for a missing value (NaN). Numbers get
training-split deciles as edges, categories their codes (each category one bucket). Edges are float32
values, so that comparing the float32 input matrix with them is exact in both halves.

numpy and service.contract only: training imports this module (it needs neither the web stack nor
prometheus_client).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from service.contract import DriftColumn

MISSING = "missing"
DECILES = tuple(q / 10 for q in range(1, 10))


class BucketFolder:
    """Rows of k columns → one count per (column, bucket): one sort and k small searches per call.

    The counts come out flat, column after column, `slots` per column: buckets 0..len(edges), unused
    padding, and the missing bucket last (`slot_names` names the used ones).
    """

    def __init__(self, edges: Sequence[Sequence[float]]) -> None:
        width = max((len(column) for column in edges), default=0)
        self.slots = width + 2
        self._size = len(edges) * self.slots
        # Per column what its sorted values are searched for: its edges, then +inf (how many values are not
        # NaN). The answers of every column go side by side into one array, column c's in _spans[c].
        self._queries = [np.array([*column, np.inf], dtype=np.float32) for column in edges]
        sizes = np.array([len(query) for query in self._queries], dtype=np.intp)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        self._spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
        self._starts, self._lasts = starts, ends - 1
        # Where each answer's bucket goes in the flat counts, and each column's missing slot.
        self._bucket_slots = np.array(
            [index * self.slots + bucket for index, query in enumerate(self._queries) for bucket in range(len(query))],
            dtype=np.intp,
        )
        self._missing = np.arange(len(edges), dtype=np.intp) * self.slots + self.slots - 1

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Counts per slot (flat, int64) of a (rows, k) float32 matrix, NaN meaning missing.

        Each column sorted (NaN sorts last), a search for an edge with side="right" gives how many of its
        values are <= that edge, NaN never; bucket i is then the difference of two neighbouring answers
        (edges[i-1] < v <= edges[i]), and the search for +inf how many are not missing. Sorting 1000 values
        is a few µs and each search touches ~10 of them: measured on a 1000×13 heart matrix, 106-126 →
        64 µs (timeit, same run) against comparing every value with every (padded) edge and bincounting
        the bucket indices."""
        columns = values.T.copy()  # a copy: sorted in place, and its rows contiguous
        columns.sort(axis=1)
        at_most = np.empty(len(self._bucket_slots), dtype=np.intp)
        for (start, end), column, query in zip(self._spans, columns, self._queries, strict=True):
            at_most[start:end] = column.searchsorted(query, side="right")
        below = np.empty_like(at_most)
        below[1:] = at_most[:-1]
        below[self._starts] = 0  # a column's first bucket starts from nothing
        counts = np.zeros(self._size, dtype=np.int64)
        counts[self._bucket_slots] = at_most - below
        counts[self._missing] = len(values) - at_most[self._lasts]
        return counts

    def slot_names(self, columns: Sequence[DriftColumn]) -> dict[int, tuple[str, str]]:
        """Flat slot → (column name, bucket name), for the slots a value can fall in."""
        names = {}
        for index, column in enumerate(columns):
            for bucket, name in enumerate(column.buckets):
                names[index * self.slots + bucket] = (column.name, name)
            names[index * self.slots + self.slots - 1] = (column.name, MISSING)
        return names


def _column(name: str, kind: str, edges: list[float], buckets: list[str], values: np.ndarray) -> DriftColumn:
    """The column with the shares of `values` (float32, NaN missing) in its buckets, as the service counts."""
    counts = BucketFolder([edges]).counts(values.reshape(-1, 1)).tolist()
    total = max(1, len(values))
    return DriftColumn(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        edges=edges,
        buckets=buckets,
        shares=[count / total for count in counts[: len(buckets)]],
        missing=counts[-1] / total,
    )


def _show(value: float) -> str:
    return f"{value:g}"


def number_column(name: str, values: np.ndarray, quantiles: Sequence[float] = DECILES) -> DriftColumn:
    """A numeric column: the quantiles of its present values as edges, open-ended first and last buckets.
    Quantiles are observed values (method "lower") and repeats merge, so a discrete column (`ca`) gets one
    bucket per value rather than empty slivers between them."""
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    present = values[~np.isnan(values)].astype(np.float64)
    quantile = np.quantile(present, quantiles, method="lower") if present.size else []
    edges = sorted({float(np.float32(q)) for q in quantile})
    bounds = ["-inf", *map(_show, edges), "+inf"]
    buckets = [f"({low}, {high}]" if high != "+inf" else f"({low}, +inf)" for low, high in pairwise(bounds)]
    return _column(name, "number", edges, buckets, values)


def category_column(name: str, values: np.ndarray, codes: Sequence[float], names: Sequence[str]) -> DriftColumn:
    """A categorical column: one bucket per code (the codes sorted; every value is one of them)."""
    order = sorted(range(len(codes)), key=lambda index: codes[index])
    edges = [float(np.float32(codes[index])) for index in order[:-1]]
    buckets = [str(names[index]) for index in order]
    return _column(name, "category", edges, buckets, np.asarray(values, dtype=np.float32).reshape(-1))


# ---- image statistics ------------------------------------------------------------------------------

IMAGE_STATISTICS = ("ink", "ink_height", "ink_width", "ink_row", "ink_column")


def image_statistics(pixels: np.ndarray, side: int) -> np.ndarray:
    """Per image (a row of side×side values, ink > 0), what changes when the input source changes:
    total ink (stroke thickness, contrast), the ink's bounding-box height and width (size, aspect), and
    the ink's centre of mass, row and column (position). (rows, 5) float32; NaN where there is no ink."""
    images = np.asarray(pixels, dtype=np.float32).reshape(-1, side, side)
    ink = images.sum(axis=(1, 2))
    rows_inked, columns_inked = images.any(axis=2), images.any(axis=1)
    index = np.arange(side, dtype=np.float32)

    def extent(inked: np.ndarray) -> np.ndarray:
        first = inked.argmax(axis=1)
        last = side - 1 - inked[:, ::-1].argmax(axis=1)
        return (last - first + 1).astype(np.float32)

    with np.errstate(invalid="ignore", divide="ignore"):
        row = (images.sum(axis=2) @ index) / ink
        column = (images.sum(axis=1) @ index) / ink
    stats = np.stack([ink, extent(rows_inked), extent(columns_inked), row, column], axis=1).astype(np.float32)
    stats[ink == 0, 1:] = np.nan
    return stats


# ---- answer statistics -----------------------------------------------------------------------------

CLASSIFICATION_STATISTICS = ("predicted", "confident")


def classification_statistics(probabilities: np.ndarray, min_confidence: float) -> np.ndarray:
    """Per answer of a multiclass model, the predicted class index and whether its probability reaches
    the minimum confidence (1) or not (0): (rows, 2) float32."""
    best = probabilities.max(axis=1)
    return np.stack([probabilities.argmax(axis=1), best >= min_confidence], axis=1).astype(np.float32)
