"""Model metrics for Prometheus, correct with several workers.

`python -m service` sets PROMETHEUS_MULTIPROC_DIR (created and emptied, see service.__main__) before
anything imports prometheus_client: the library picks its storage (in-memory, or one mmap file per
process) when first imported, and workers inherit the variable. With it set, `GET /metrics` (Litestar's
PrometheusController) sums every worker's files, so one scrape holds every worker's counts.

Hot-path cost: children are looked up once per model version (`ModelMetrics`) and updated through
cells that skip prometheus_client's per-call checks (`CounterCell`, `HistogramCell`); the per-row
observations of a batch are folded with numpy into one increment per bucket or label
(`HistogramCell.observe_many`, `inc_counts`), so a 1000-row batch costs about as much as a single row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from service.cells import CounterCell, HistogramCell
from service.contract import Drift
from service.drift import MISSING, BucketFolder

# Not `le`: promtool check metrics refuses an `le` label on anything but a histogram. A rule joins
# it with the live histogram through label_replace(..., "le", "$1", "bound", "(.*)").
REFERENCE_BOUND_LABEL = "bound"
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
HTTP_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
INFERENCE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000)

PREDICTIONS = Counter(
    "modelserve_predictions", "Predictions answered, by predicted label", ["model", "version", "label"]
)
PROBABILITY = Histogram(
    "modelserve_predicted_probability",
    "Predicted probability per answered row (heart: P(disease); digits: the top class's probability)",
    ["model", "version"],
    buckets=PROBABILITY_BUCKETS,
)
REFERENCE_RATIO = Gauge(
    "modelserve_reference_probability_ratio",
    "Cumulative share of the test split's predicted probabilities at or below bound (from the manifest)",
    ["model", "version", REFERENCE_BOUND_LABEL],
    multiprocess_mode="livemax",
)
INFERENCE = Histogram(
    "modelserve_inference_seconds",
    "Time of one onnxruntime call alone, seconds",
    ["model", "version"],
    buckets=INFERENCE_BUCKETS,
)
BATCH_ROWS = Histogram(
    "modelserve_batch_rows",
    "Rows per onnxruntime call (micro-batched single requests or one batch request)",
    ["model", "version"],
    buckets=BATCH_BUCKETS,
)
EXPLANATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
EXPLAINED_ROWS = Counter("modelserve_explained_rows", "Answered rows explained (`?explain=true`)", ["model", "version"])
EXPLANATION = Histogram(
    "modelserve_explanation_seconds",
    "Time to explain one request's rows: building the rows, the one onnxruntime call, folding its outputs",
    ["model", "version"],
    buckets=EXPLANATION_BUCKETS,
)
VALIDATION_FAILURES = Counter(
    "modelserve_validation_failures", "Prediction requests refused, by reason class", ["model", "reason"]
)
MISSING_FIELDS = Counter(
    "modelserve_missing_fields", "Heart rows answered with this field missing", ["model", "version", "field"]
)
INPUT_BUCKET = Counter(
    "modelserve_input_bucket",
    "Answered rows per bucket of a monitored input column (service.drift; bucket `missing`: no value)",
    ["model", "version", "feature", "bucket"],
)
# Gauges rather than constants in a generated rules file: a new version brings its reference with it on
# reload, and one set of rules serves every model and version.
INPUT_REFERENCE = Gauge(
    "modelserve_input_reference_share",
    "The training split's share of rows in each bucket of a monitored input column (the manifest's drift)",
    ["model", "version", "feature", "bucket"],
    multiprocess_mode="livemax",
)
MODEL_INFO = Gauge(
    "modelserve_model_info",
    "1 for the version a live worker serves (0 once replaced)",
    ["model", "version", "sha256"],
    multiprocess_mode="livemax",
)
RELOADS = Counter("modelserve_reloads", "Model reload attempts, by result", ["model", "result"])
MODEL_READY = Gauge(
    "modelserve_model_ready",
    "1 if every live worker serves a checked version of the model",
    ["model"],
    multiprocess_mode="livemin",
)
READY = Gauge("modelserve_ready", "1 if every live worker is ready", multiprocess_mode="livemin")


class _Refusals(dict[tuple[str, str], Any]):
    """(model, reason class) → the labelled counter child, looked up on first use."""

    def __missing__(self, key: tuple[str, str]) -> Any:
        child = self[key] = VALIDATION_FAILURES.labels(*key)
        return child


_REFUSALS = _Refusals()


def count_refusal(model: str, reason: str) -> None:
    """One request to `model` refused for `reason` (a service.errors reason class), from any protocol."""
    _REFUSALS[model, reason].inc()


class ModelMetrics:
    """The labelled children for one model version, looked up once, as cells."""

    def __init__(self, model: str, version: str, sha256: str, labels: Sequence[str], fields: Sequence[str] = ()):
        self.model, self.version, self.sha256 = model, version, sha256
        self.labels = [CounterCell(PREDICTIONS.labels(model, version, label)) for label in labels]
        self.probability = HistogramCell(PROBABILITY.labels(model, version))
        self.inference = HistogramCell(INFERENCE.labels(model, version))
        self.batch_rows = HistogramCell(BATCH_ROWS.labels(model, version))
        self.missing = [CounterCell(MISSING_FIELDS.labels(model, version, field)) for field in fields]
        self.explained = CounterCell(EXPLAINED_ROWS.labels(model, version))
        self.explanation = HistogramCell(EXPLANATION.labels(model, version))
        self.drift: InputDrift | None = None

    def watch_inputs(self, drift: Drift | None, values: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Count the monitored columns (`values` of each call's matrix and outputs) against `drift`."""
        if drift is not None:
            self.drift = InputDrift(self.model, self.version, drift, values)

    def observe_call(self, rows: int, seconds: float) -> None:
        self.inference.observe(seconds)
        self.batch_rows.observe(rows)

    def observe_explanation(self, rows: int, seconds: float) -> None:
        self.explained.inc(rows)
        self.explanation.observe(seconds)

    def publish(self, monitoring: dict[str, Any] | None) -> None:
        """This version is served: info 1, and the training distribution for drift comparisons."""
        MODEL_INFO.labels(self.model, self.version, self.sha256).set(1)
        histogram = (monitoring or {}).get("test_probability_histogram") or {}
        total = histogram.get("count") or 0
        for le, cumulative in zip(histogram.get("le", []), histogram.get("cumulative_counts", []), strict=False):
            if total:
                REFERENCE_RATIO.labels(self.model, self.version, format_le(le)).set(cumulative / total)

    def retire(self) -> None:
        """This version was replaced in this worker."""
        MODEL_INFO.labels(self.model, self.version, self.sha256).set(0)
        if self.drift is not None:
            self.drift.flush()


def format_le(bound: float) -> str:
    """`le` as prometheus_client writes histogram buckets (0.1, 1.0), so a rule can join the two."""
    return repr(float(bound))


def set_ready(models: Sequence[str], ready: bool) -> None:
    value = 1 if ready else 0
    READY.set(value)
    for model in models:
        MODEL_READY.labels(model).set(value)


class InputDrift:
    """Live bucket counts of one version's monitored input columns, and its training reference (gauges).

    Off the per-request path: an ONNX call only queues its matrix and outputs; FLUSH_ROWS queued rows are
    folded (BucketFolder) into pending counts, so a batch is folded at once and single rows many at a time;
    FLUSH_SECONDS after the first queued row the pending counts go to the counters, one increment per
    non-empty bucket (an increment costs more than folding a row), so /metrics lags by about a second."""

    FLUSH_ROWS = 256
    FLUSH_SECONDS = 1.0

    def __init__(
        self, model: str, version: str, drift: Drift, values: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ) -> None:
        self._values = values
        self._folder = BucketFolder([column.edges for column in drift.columns])
        self._cells = {
            slot: CounterCell(INPUT_BUCKET.labels(model, version, feature, bucket))
            for slot, (feature, bucket) in self._folder.slot_names(drift.columns).items()
        }
        for column in drift.columns:
            for bucket, share in [*zip(column.buckets, column.shares, strict=True), (MISSING, column.missing)]:
                INPUT_REFERENCE.labels(model, version, column.name, bucket).set(share)
        self._matrices: list[np.ndarray] = []
        self._outputs: list[np.ndarray] = []
        self._rows = 0
        self._pending: np.ndarray | None = None
        self._timer: asyncio.TimerHandle | None = None

    def add(self, matrix: np.ndarray, outputs: np.ndarray) -> None:
        """Queue one ONNX call's rows (the arrays are not modified afterwards)."""
        self._matrices.append(matrix)
        self._outputs.append(outputs)
        self._rows += len(matrix)
        if self._rows >= self.FLUSH_ROWS:
            self._fold()
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no event loop in this thread: count now
                self.flush()

    def _fold(self) -> None:
        if not self._matrices:
            return
        matrices, outputs = self._matrices, self._outputs
        self._matrices, self._outputs, self._rows = [], [], 0
        matrix, output = (matrices[0], outputs[0]) if len(matrices) == 1 else map(np.concatenate, (matrices, outputs))
        counts = self._folder.counts(self._values(matrix, output))
        self._pending = counts if self._pending is None else self._pending + counts

    def flush(self) -> None:
        """Fold every queued row and add the pending counts to the counters."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fold()
        pending, self._pending = self._pending, None
        if pending is None:
            return
        cells = self._cells
        for slot in np.flatnonzero(pending).tolist():
            cells[slot].inc(int(pending[slot]))
