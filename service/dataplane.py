"""The data plane: which versions are served, and predicting with them. Model-agnostic and protocol-free.

It takes input rows or a matrix and gives model outputs and decisions; it knows no JSON and no HTTP
(service.api translates wire formats to these calls). What it owns:
- the served versions, one `Served` per model, swapped as a whole dict on reload (one assignment,
  atomic for the requests of this event loop; in-flight requests keep the `Served` they hold);
- loading: verify the artifact, build the Model class its manifest names, self-check it against
  `reference.json`, then start its metrics (so the self-check's rows are not counted);
- micro-batching of single rows (service.batching) and the model metrics of every call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from service.artifact import Artifact, ArtifactError, load_artifact
from service.batching import MicroBatcher
from service.cells import inc_counts
from service.contract import ONNX_FILE, REFERENCE_FILE
from service.errors import ServiceError, from_validation_error, not_ready
from service.metrics import ModelMetrics
from service.models import MODEL_CLASSES, Model
from service.schemas import ModelInfo
from service.settings import Settings

SELF_CHECK_TOLERANCE = 1e-5
logger = logging.getLogger("service.dataplane")
# The thread explanations run in (Served.explain); its thread starts at the first explanation, in the worker.
_EXPLAINER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")


class Served:
    """One loaded version: its Model, its micro-batcher and (once it passed its self-check) its metrics."""

    __slots__ = ("batcher", "info", "metrics", "model")

    def __init__(self, model: Model) -> None:
        self.model = model
        self.batcher = MicroBatcher(self._run)
        self.metrics: ModelMetrics | None = None
        self.info: ModelInfo | None = None

    @property
    def version(self) -> str:
        return self.model.version

    def _run(self, matrix: np.ndarray) -> np.ndarray:
        """One ONNX call, timed and counted (inference time, rows, predicted probabilities)."""
        started = time.perf_counter()
        outputs = self.model.run(matrix)
        if (metrics := self.metrics) is not None:
            metrics.observe_call(len(outputs), time.perf_counter() - started)
            metrics.probability.observe_many(self.model.scores(outputs))
            if metrics.drift is not None:
                metrics.drift.add(matrix, outputs)
        return outputs

    async def predict_one(self, row: Any, threshold: float) -> tuple[Any, int]:
        """One row's output and decision; concurrent rows of one loop turn share an ONNX call."""
        output = await self.batcher.predict(row)
        model = self.model
        decision = model.decide_one(output, threshold)
        if (metrics := self.metrics) is not None:
            metrics.labels[decision].inc()
            for column in model.missing(row):
                metrics.missing[column].inc()
        return output, decision

    def predict_matrix(self, matrix: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Every row's outputs and decisions with one ONNX call; counted like as many single rows."""
        outputs = self._run(matrix)
        decisions = self.model.decide(outputs, threshold)
        if (metrics := self.metrics) is not None:
            inc_counts(metrics.labels, np.bincount(decisions, minlength=len(self.model.labels)))
            if metrics.missing and (missing := np.isnan(matrix)).any():  # counting costs ~3× the test
                # Per column as a matrix-vector product of the 0/1 matrix (BLAS; integers, exact in float64):
                # 1000×13, 27 → 13 µs against numpy's bool sum along axis 0 (timeit, same run).
                inc_counts(metrics.missing, (np.ones(len(matrix)) @ missing.astype(np.float64)).astype(np.int64))
        return outputs, decisions

    async def explain(self, matrix: np.ndarray, outputs: np.ndarray, decisions: np.ndarray) -> list[Any]:
        """`explain_now` in the worker's explanation thread: an explanation is milliseconds of numpy and
        onnxruntime (thousands of coalition rows), which on the event loop would hold up every other
        request of this worker; off it, plain predictions keep flowing meanwhile (onnxruntime and most of
        numpy release the GIL). One thread: explanations of a worker queue rather than compete for the
        cores the worker's predictions need, and at most one explanation's rows are in memory at a time."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_EXPLAINER, self.explain_now, matrix, outputs, decisions)

    def explain_now(self, matrix: np.ndarray, outputs: np.ndarray, decisions: np.ndarray) -> list[Any]:
        """One explanation per answered (validated) row, from ONE onnxruntime call over every row the
        model's method needs (heart: the Shapley coalitions); timed and counted apart from predictions."""
        started = time.perf_counter()
        model = self.model
        plan = model.explain_plan(matrix, outputs, decisions)
        explanations = plan.finish(model.run(plan.rows))
        if (metrics := self.metrics) is not None:
            metrics.observe_explanation(len(matrix), time.perf_counter() - started)
        return explanations


@dataclass
class DataPlane:
    """The models of one worker process, and its readiness."""

    settings: Settings
    served: dict[str, Served] = field(default_factory=dict)
    ready: bool = False
    closing: bool = False  # draining after SIGTERM (granian): every response says Connection: close
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # CURRENT contents whose reload failed, so that the poller retries only when CURRENT changes.
    failed_targets: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """The models this worker serves (SERVICE_MODELS), loaded or not yet."""
        return tuple(self.settings.models)

    def get(self, name: str) -> Served:
        """The served version of a model this worker serves; 503 until the models are loaded (servers
        take no requests before then, but an ASGI host that skips the lifespan could)."""
        served = self.served.get(name)
        if served is None:
            raise not_ready()
        return served

    async def load_all(self) -> None:
        """Every configured model, or an ArtifactError for the first that cannot be served."""
        loaded = {}
        for name in self.names:
            loaded[name] = await self.load(name)
        self.served = loaded

    async def load(self, name: str) -> Served:
        """Verify, load and self-check one model's version (raises ArtifactError); its metrics start after.

        Hashing the files and building the ONNX session run in a thread, so that a reload does not stall
        the requests being served meanwhile; the self-check needs the event loop (the micro-batcher)."""
        started = time.perf_counter()
        artifact, served = await asyncio.to_thread(self._build, name)
        worst = await self_check(served, artifact, self.settings.max_batch)
        manifest = artifact.manifest
        sha256 = manifest.files[ONNX_FILE].sha256
        served.metrics = ModelMetrics(name, artifact.version, sha256, manifest.labels, served.model.counted_missing)
        served.metrics.publish(manifest.monitoring)
        served.metrics.watch_inputs(manifest.drift, served.model.drift_values)
        served.info = describe(served.model, sha256)
        logger.info(
            "model loaded",
            extra={
                "model": name,
                "version": artifact.version,
                "reference_rows": len(artifact.reference["inputs"]),
                "self_check_max_abs_diff": worst,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return served

    def _build(self, name: str) -> tuple[Artifact, Served]:
        artifact = load_artifact(self.settings.artifacts_dir, name, self.settings.pinned_version(name))
        model_class = MODEL_CLASSES.get(artifact.manifest.name)
        if model_class is None:
            known = ", ".join(sorted(MODEL_CLASSES))
            raise ArtifactError(name, artifact.version, None, f"no Model class for {name!r} (known: {known})")
        return artifact, Served(model_class(artifact))

    def swap(self, name: str, served: Served) -> Served:
        """Serve `served` for `name` from now on; returns the version it replaced."""
        old = self.served[name]
        self.served = {**self.served, name: served}
        if old.metrics is not None:
            old.metrics.retire()
        return old


def _compare(artifact: Artifact, index: int, got: list[float], expected: Any, how: str) -> float:
    expected_list = expected if isinstance(expected, list) else [expected]
    if len(got) != len(expected_list):
        raise ArtifactError(
            artifact.name,
            artifact.version,
            REFERENCE_FILE,
            f"row {index}: the service gives {len(got)} probabilities, the reference {len(expected_list)}",
        )
    worst = max(abs(g - e) for g, e in zip(got, expected_list, strict=True))
    if not worst <= SELF_CHECK_TOLERANCE:  # written so that NaN fails too
        raise ArtifactError(
            artifact.name,
            artifact.version,
            REFERENCE_FILE,
            f"row {index} ({how}): the service's probabilities differ from the reference by {worst:.3g} "
            f"(> {SELF_CHECK_TOLERANCE:g}): the ONNX graph does not reproduce the trained model",
        )
    return worst


async def self_check(served: Served, artifact: Artifact, max_batch: int) -> float:
    """Every reference input through validation, rows and the model, as concurrent single rows (so they
    also go through the micro-batcher together) and as batches, answers built; the worst |difference|."""
    model = served.model
    inputs, expected = artifact.reference["inputs"], artifact.reference["probabilities"]
    threshold = model.threshold
    worst = 0.0
    try:
        items = [msgspec.convert(body, model.request) for body in inputs]
        rows = [model.row(item, "") for item in items]
        answers = await asyncio.gather(*(served.predict_one(row, threshold) for row in rows))
        for index, (output, decision) in enumerate(answers):
            model.answer(output, decision, rows[index], threshold)
            worst = max(worst, _compare(artifact, index, model.reference_outputs(output), expected[index], "single"))
        for start in range(0, len(items), max_batch):
            matrix = model.matrix(items[start : start + max_batch])
            outputs, decisions = served.predict_matrix(matrix, threshold)
            model.answer_batch(outputs, decisions, matrix, threshold)
            for offset, output in enumerate(outputs):
                index = start + offset
                worst = max(worst, _compare(artifact, index, model.reference_outputs(output), expected[index], "batch"))
    except (msgspec.ValidationError, ServiceError) as error:
        if isinstance(error, msgspec.ValidationError):
            error = from_validation_error(error, model.choices)
        detail = error.one_line()
        raise ArtifactError(
            artifact.name,
            artifact.version,
            REFERENCE_FILE,
            f"the service rejects a reference input ({detail}): the manifest and the service disagree",
        ) from None
    return worst


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Cross-validation summaries and the test split's scalars: not matrices, curves or histories."""

    def summaries(section: Any) -> dict[str, Any]:
        if not isinstance(section, dict):
            return {}
        return {
            key: value
            for key, value in section.items()
            if (isinstance(value, int | float | str) and not isinstance(value, bool))
            or (isinstance(value, dict) and set(value) == {"mean", "std"})
        }

    return {key: summaries(metrics.get(key)) for key in ("cv", "test", "baseline") if key in metrics}


def describe(model: Model, sha256: str) -> ModelInfo:
    """What GET /models says of a loaded version."""
    manifest = model.manifest
    return ModelInfo(
        name=model.name,
        version=model.version,
        sha256=sha256,
        created_at=manifest.created_at,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        threshold=model.threshold,
        labels=list(manifest.labels),
        metrics=headline_metrics(manifest.metrics),
        inputs=msgspec.to_builtins(manifest.inputs),
        drift=manifest.drift,
    )
