"""The Open Inference Protocol's REST routes under /v2, with the protocol's error shape (service.v2.errors).

Health and readiness follow the same state as /health/ready; as the protocol says, the status is the
answer (200 true, 400 false) and the body is empty. `infer` reads its body by hand, like the /predict
routes (service.routes.predict says why): its handler returns an ASGI app that takes the model and
version from the path.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from litestar import Router, get, post
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from service.contract import MODEL_NAMES
from service.errors import ApiError, reason_class
from service.metrics import VALIDATION_FAILURES
from service.registry import Predictor, ServiceState
from service.routes.body import JSON_HEADERS, JsonBody, check_json_content_type, read_body
from service.routes.docs import body_documentation
from service.v2.docs import (
    DIGITS_INFER_EXAMPLES,
    HEART_INFER_EXAMPLES,
    INFER_RESPONSE,
    MODEL_METADATA,
    ModelOperation,
    empty,
    error_responses,
    success,
)
from service.v2.errors import V2_EXCEPTION_HANDLERS, V2Error, bad_request
from service.v2.infer import MODELS, infer
from service.v2.schemas import InferenceRequest, InferenceResponse, ModelMetadata, ServerMetadata

PLATFORM = "onnxruntime_onnx"  # Triton's name for a model run by onnxruntime
_BINARY_HEADER = b"inference-header-content-length"  # Triton's binary tensor extension
_encode = msgspec.json.Encoder().encode


class StatusOnly:
    """A health answer: the status is the answer; no body and so no content type (as the protocol says)."""

    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        self.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


NO_BODY = {200: StatusOnly(200), 400: StatusOnly(400)}


def _server_version() -> str:
    try:
        return version("modelserve")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


SERVER = _encode(ServerMetadata(name="modelserve", version=_server_version(), extensions=[]))


def _predictor(state: ServiceState, name: str, wanted: str | None) -> Predictor:
    """The loaded model `name` (at version `wanted`, if given); 404 naming what is there instead."""
    if name not in MODEL_NAMES:
        raise V2Error(404, f"unknown model {name[:64]!r}: this server has {', '.join(MODEL_NAMES)}")
    predictor = state.predictor(name)
    if wanted is not None and wanted != predictor.version:
        raise V2Error(404, f"model {name!r} has no version {wanted[:64]!r}: it serves {predictor.version}")
    return predictor


def _readiness(state: ServiceState, name: str, wanted: str | None) -> StatusOnly:
    """200 when the model (at that version) is served, 400 while the service is not ready; an unknown
    model or version is a 404 either way."""
    if name not in MODEL_NAMES:
        _predictor(state, name, wanted)  # raises the 404
    if not state.ready or state.registry is None:
        return NO_BODY[400]
    _predictor(state, name, wanted)
    return NO_BODY[200]


def _metadata(predictor: Predictor) -> bytes:
    spec = MODELS[predictor.name]
    metadata = ModelMetadata(
        name=predictor.name,
        versions=[predictor.version],
        platform=PLATFORM,
        inputs=spec.INPUTS,
        outputs=spec.OUTPUTS,
    )
    return _encode(metadata)


def _check_content_type(headers: list[tuple[bytes, bytes]]) -> None:
    """JSON, or no Content-Type at all (tritonclient sends none); binary tensor data are refused."""
    names = {name for name, _ in headers}
    if _BINARY_HEADER in names:
        raise bad_request("binary tensor data (Inference-Header-Content-Length) are not supported; send JSON")
    if b"content-type" in names:
        check_json_content_type(headers)


class _FailureCounters(dict[tuple[str, str], Any]):
    """(model, reason class) → the labelled counter child, looked up on first use."""

    def __missing__(self, key: tuple[str, str]) -> Any:
        child = self[key] = VALIDATION_FAILURES.labels(*key)
        return child


class InferEndpoint:
    """POST .../infer: the body read under the limit, the answer sent as JSON, refusals counted."""

    __slots__ = ("failures", "limit", "max_batch", "state")

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.limit = state.settings.max_body_bytes
        self.max_batch = state.settings.max_batch
        self.failures = _FailureCounters()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path_params"]["name"]
        try:
            answer = await self._answer(scope, receive, name, scope["path_params"].get("version"))
        except V2Error as error:
            if error.status == 400:  # a request a known model refused (404: no such model)
                self.failures[name, error.reason].inc()
            raise
        except ApiError as error:
            if error.status not in (404, 503) and name in MODEL_NAMES:
                self.failures[name, reason_class(error)].inc()
            raise
        headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer, "more_body": False})

    async def _answer(self, scope: Scope, receive: Receive, name: str, wanted: str | None) -> bytes:
        predictor = _predictor(self.state, name, wanted)
        _check_content_type(scope["headers"])
        body = await read_body(scope, receive, self.limit)
        try:
            return infer(name, predictor, body, self.max_batch)
        except UnicodeDecodeError:  # msgspec's error for a string that is not UTF-8: not JSON (RFC 8259 §8.1)
            raise bad_request("the body is not valid JSON: a string is not valid UTF-8", "malformed_json") from None


def _endpoint(endpoint: InferEndpoint) -> Callable[[], InferEndpoint]:
    def handle() -> InferEndpoint:
        return endpoint

    return handle


def v2_router(state: ServiceState) -> Router:
    """Every V2 route, bound to this app's state, answering errors in the protocol's shape."""
    common: dict[str, Any] = {"tags": ["inference protocol (V2)"], "sync_to_thread": False}
    per_model: dict[str, Any] = {"operation_class": ModelOperation, **common}
    lookup_errors = error_responses(400, 404, 503)

    @get(
        "/",
        summary="Server metadata",
        responses=success(ServerMetadata, msgspec.json.decode(SERVER), "server"),
        **common,
    )
    def server() -> JsonBody:
        return JsonBody(SERVER)

    @get("/health/live", summary="Liveness (status only, empty body)", responses=empty(200, "live"), **common)
    def live() -> StatusOnly:
        return NO_BODY[200]

    @get(
        "/health/ready",
        summary="Readiness, as /health/ready (status only, empty body)",
        responses={**empty(200, "ready"), **empty(400, "not ready")},
        **common,
    )
    def ready() -> StatusOnly:
        return NO_BODY[200 if state.ready else 400]

    metadata_docs = {"responses": {**success(ModelMetadata, MODEL_METADATA, "metadata"), **lookup_errors}, **per_model}

    @get("/models/{name:str}", summary="Model metadata: versions, input and output tensors", **metadata_docs)
    def model_metadata(name: FromPath[str]) -> JsonBody:
        return JsonBody(_metadata(_predictor(state, name, None)))

    @get("/models/{name:str}/versions/{version:str}", summary="Model metadata of one version", **metadata_docs)
    def version_metadata(name: FromPath[str], version: FromPath[str]) -> JsonBody:
        return JsonBody(_metadata(_predictor(state, name, version)))

    ready_docs = {"responses": {**empty(200, "ready"), **empty(400, "not ready"), **error_responses(404)}, **per_model}

    @get("/models/{name:str}/ready", summary="Model readiness (status only, empty body)", **ready_docs)
    def model_ready(name: FromPath[str]) -> StatusOnly:
        return _readiness(state, name, None)

    @get("/models/{name:str}/versions/{version:str}/ready", summary="Readiness of one version", **ready_docs)
    def version_ready(name: FromPath[str], version: FromPath[str]) -> StatusOnly:
        return _readiness(state, name, version)

    endpoint = InferEndpoint(state)
    infer_docs: dict[str, Any] = {
        "status_code": 200,
        "description": "Tensors as in the model's metadata. heart: one input per feature, shape [N, 1] or [N]; "
        "a missing value is `null` in `data`, or the feature's input left out; `parameters.threshold` overrides "
        "the decision threshold. digits: `pixels` FP32 [N, 64] or [N, 8, 8], counts 0..16.",
        "dependencies": body_documentation(
            InferenceRequest, [*HEART_INFER_EXAMPLES, *DIGITS_INFER_EXAMPLES], "the input tensors"
        ),
        "responses": {
            **success(InferenceResponse, INFER_RESPONSE, "the output tensors"),
            **error_responses(400, 404, 413, 415, 503),
        },
        **per_model,
    }
    infer_latest = post("/models/{name:str}/infer", summary="Inference", **infer_docs)(_endpoint(endpoint))
    infer_version = post(
        "/models/{name:str}/versions/{version:str}/infer", summary="Inference on one version", **infer_docs
    )(_endpoint(endpoint))
    return Router(
        "/v2",
        route_handlers=[
            server,
            live,
            ready,
            model_metadata,
            version_metadata,
            model_ready,
            version_ready,
            infer_latest,
            infer_version,
        ],
        exception_handlers=V2_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
