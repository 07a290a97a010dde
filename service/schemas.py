"""The bodies every model shares, as msgspec Structs: model descriptions, health, reloads and errors.

Each model's own request and response bodies live with its Model class (service.models).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from service.contract import Drift


class ModelInfo(Struct):
    name: str
    version: str
    sha256: Annotated[str, Meta(description="sha256 of model.onnx, verified at load")]
    created_at: str
    loaded_at: str
    threshold: float
    labels: list[str]
    metrics: Annotated[dict[str, Any], Meta(description="headline metrics (cross-validation and test split)")]
    inputs: Annotated[dict[str, Any], Meta(description="the input specification from the manifest")]
    drift: Annotated[
        Drift | None,
        Meta(
            description="the training split's distribution of each monitored input column (bucket shares and "
            "missing share), which the modelserve_input_* metrics compare live traffic with; null for a "
            "version built without it"
        ),
    ] = None


class ModelList(Struct):
    models: list[ModelInfo]


class Health(Struct):
    status: Literal["live", "ready", "not ready"]


class ReloadedModel(Struct):
    """One model's outcome of `POST /admin/reload` (mirrors service.reload.ReloadOutcome)."""

    model: str
    result: Annotated[Literal["reloaded", "unchanged", "failed"], Meta(description="what happened to the model")]
    previous: Annotated[str, Meta(description="the version served before the reload")]
    version: Annotated[str | None, Meta(description="the version CURRENT names (null if unreadable)")]
    file: str | None = None
    reason: str | None = None


class ReloadAnswer(Struct):
    models: list[ReloadedModel]


class ErrorField(Struct):
    field: Annotated[str, Meta(description="path of the offending value, e.g. `instances.3.age`")]
    reason: str


class ErrorDetail(Struct):
    code: Annotated[str, Meta(description="machine-readable: validation_failed, malformed_json, ...")]
    message: str
    fields: list[ErrorField]


class ErrorBody(Struct):
    error: ErrorDetail
