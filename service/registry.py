"""Load every model at start-up, prove each one answers like the torch model did, and describe them.

The self-check sends every `reference.json` input through the same functions the HTTP handlers call
(JSON bytes in → validation → matrix → ONNX → JSON bytes out, single and batch) and compares the
probabilities in the responses with the recorded ones. A model that passes is served; any failure
is an ArtifactError naming the model, the version and the file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from service.artifact import Artifact, ArtifactError, load_artifact
from service.contract import MODEL_NAMES, ONNX_FILE, REFERENCE_FILE
from service.digits import DigitPredictor
from service.errors import ApiError
from service.heart import NAMES as HEART_NAMES
from service.heart import HeartPredictor
from service.metrics import ModelMetrics
from service.schemas import ModelInfo, ModelList
from service.settings import Settings

SELF_CHECK_TOLERANCE = 1e-5
logger = logging.getLogger("service.registry")


class Predictor(Protocol):
    name: str
    version: str
    threshold: float
    metrics: ModelMetrics | None

    async def predict_one(self, body: bytes, threshold: float | None = None) -> bytes: ...

    def predict_batch(self, body: bytes, threshold: float | None = None) -> bytes: ...

    @staticmethod
    def outputs_of(row: dict[str, Any]) -> list[float]: ...


PREDICTORS: dict[str, Any] = {"heart": HeartPredictor, "digits": DigitPredictor}
# Fields whose absence is counted (modelserve_missing_fields_total): heart only.
NAMES_BY_MODEL: dict[str, tuple[str, ...]] = {"heart": HEART_NAMES, "digits": ()}


@dataclass(frozen=True)
class Registry:
    """The loaded models and their descriptions, encoded once. Never changed: a reload builds a new
    Registry and swaps the reference (one assignment, atomic for the requests of this event loop)."""

    predictors: dict[str, Predictor]
    models: dict[str, ModelInfo]
    infos: dict[str, bytes]
    listing: bytes

    @classmethod
    def of(cls, predictors: dict[str, Predictor], models: dict[str, ModelInfo]) -> Registry:
        encode = msgspec.json.encode
        return cls(
            predictors=predictors,
            models=models,
            infos={name: encode(info) for name, info in models.items()},
            listing=encode(ModelList(models=list(models.values()))),
        )


def _chunks(items: list[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


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


async def self_check(predictor: Predictor, artifact: Artifact, max_batch: int) -> float:
    """Every reference row through the full request path, as concurrent single requests (so they also
    go through the micro-batcher together) and as batch requests; the worst |difference|."""
    encode, decode = msgspec.json.encode, msgspec.json.decode
    inputs, expected = artifact.reference["inputs"], artifact.reference["probabilities"]
    worst = 0.0
    try:
        answers = await asyncio.gather(*(predictor.predict_one(encode(body)) for body in inputs))
        for index, answer in enumerate(answers):
            got = predictor.outputs_of(decode(answer))
            worst = max(worst, _compare(artifact, index, got, expected[index], "single"))
        for start, chunk in _chunks(inputs, max_batch):
            rows = decode(predictor.predict_batch(encode({"instances": chunk})))["predictions"]
            for offset, row in enumerate(rows):
                index = start + offset
                got = predictor.outputs_of(row)
                worst = max(worst, _compare(artifact, index, got, expected[index], "batch"))
    except ApiError as error:
        fields = "; ".join(f"{field}: {reason}" for field, reason in error.fields) or error.message
        raise ArtifactError(
            artifact.name,
            artifact.version,
            REFERENCE_FILE,
            f"the service rejects a reference input ({fields}): the manifest and the service disagree",
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


def describe(artifact: Artifact, predictor: Predictor, loaded_at: str) -> ModelInfo:
    manifest = artifact.manifest
    return ModelInfo(
        name=artifact.name,
        version=artifact.version,
        sha256=manifest["files"][ONNX_FILE]["sha256"],
        created_at=str(manifest["created_at"]),
        loaded_at=loaded_at,
        threshold=predictor.threshold,
        labels=[str(label) for label in manifest["labels"]],
        metrics=headline_metrics(manifest["metrics"]),
        inputs=manifest["inputs"],
    )


def _build(settings: Settings, name: str) -> tuple[Artifact, Predictor]:
    artifact = load_artifact(settings.artifacts_dir, name, settings.pinned_version(name))
    return artifact, PREDICTORS[name](artifact, settings.max_batch)


async def load_one(settings: Settings, name: str) -> tuple[Predictor, ModelInfo]:
    """Verify, load and self-check one model (raises ArtifactError); its metrics start counting after.

    Hashing the files and building the ONNX session run in a thread, so that a reload does not stall
    the requests being served meanwhile; the self-check needs the event loop (the micro-batcher).
    """
    started = time.perf_counter()
    artifact, predictor = await asyncio.to_thread(_build, settings, name)
    worst = await self_check(predictor, artifact, settings.max_batch)
    sha256 = artifact.manifest["files"][ONNX_FILE]["sha256"]
    predictor.metrics = ModelMetrics(name, artifact.version, sha256, artifact.manifest["labels"], NAMES_BY_MODEL[name])
    predictor.metrics.publish(artifact.manifest.get("monitoring"))
    loaded_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
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
    return predictor, describe(artifact, predictor, loaded_at)


async def load_registry(settings: Settings) -> Registry:
    """Every model in the contract, or an ArtifactError for the first that cannot be served."""
    predictors: dict[str, Predictor] = {}
    infos: dict[str, ModelInfo] = {}
    for name in MODEL_NAMES:
        predictors[name], infos[name] = await load_one(settings, name)
    return Registry.of(predictors, infos)


@dataclass
class ServiceState:
    """What the routes of one app share: its settings, and the registry once the lifespan loaded it."""

    settings: Settings
    registry: Registry | None = None
    ready: bool = False
    closing: bool = False  # draining after SIGTERM (granian): every response says Connection: close
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # CURRENT contents whose reload failed, so that the poller retries only when CURRENT changes.
    failed_targets: dict[str, str] = field(default_factory=dict)

    def predictor(self, name: str) -> Predictor:
        """The loaded predictor; 503 if called before the lifespan loaded the models (servers do not
        accept requests before then, but an ASGI host that skips the lifespan could)."""
        if self.registry is None:
            raise ApiError(503, "not_ready", "the models are not loaded yet")
        return self.registry.predictors[name]
