"""The Open Inference Protocol's REST routes under /v2, with the protocol's error shape (service.api.v2.errors).

Health and readiness follow the same state as /health/ready; as the protocol says, the status is the
answer (200 true, 400 false) and the body is empty. `infer` reads its body by hand, like the /predict
routes (service.api.predict says why), and hands the request to service.api.v2.infer.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.types import Receive, Scope

from service.api.body import check_json_content_type, not_utf8, read_body
from service.api.docs import JSON, body_documentation, examples
from service.api.v2.docs import (
    INFER_RESPONSE,
    MODEL_METADATA,
    empty,
    error_responses,
    infer_description,
    model_operation,
    success,
)
from service.api.v2.errors import V2_EXCEPTION_HANDLERS, bad_request
from service.api.v2.infer import infer
from service.api.v2.schemas import InferenceRequest, InferenceResponse, ModelMetadata, ServerMetadata, TensorMetadata
from service.dataplane import DataPlane, Served
from service.errors import NOT_COUNTED, ServiceError
from service.metrics import count_refusal

PLATFORM = "onnxruntime_onnx"  # Triton's name for a model run by onnxruntime
_BINARY_HEADER = b"inference-header-content-length"  # Triton's binary tensor extension
_encode = msgspec.json.Encoder().encode


def _server_version() -> str:
    try:
        return version("modelserve")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


EXTENSIONS = ["binary_tensor_data"]
SERVER_VERSION = _server_version()
SERVER = _encode(ServerMetadata(name="modelserve", version=SERVER_VERSION, extensions=EXTENSIONS))


def served_model(plane: DataPlane, name: str, wanted: str | None) -> Served:
    """The served model `name` (at version `wanted`, if given); 404 naming what is there instead."""
    if name not in plane.names:
        raise ServiceError(404, "not_found", f"unknown model {name[:64]!r}: this server has {', '.join(plane.names)}")
    served = plane.get(name)
    if wanted is not None and wanted != served.version:
        raise ServiceError(
            404, "not_found", f"model {name!r} has no version {wanted[:64]!r}: it serves {served.version}"
        )
    return served


def _status(status: int) -> Response[bytes]:
    """A health answer: the status is the answer, the body empty (as the protocol says)."""
    return Response(b"", status_code=status, media_type=None)


def _readiness(plane: DataPlane, name: str, wanted: str | None) -> Response[bytes]:
    """200 when the model (at that version) is served, 400 while the service is not ready; an unknown
    model or version is a 404 either way."""
    if name not in plane.names:
        served_model(plane, name, wanted)  # raises the 404
    if not plane.ready or not plane.served:
        return _status(400)
    served_model(plane, name, wanted)
    return _status(200)


def model_properties(model: Any) -> dict[str, str] | None:
    """What the metadata says of the request parameter `explain`: the output it adds. `contributions` is not
    among the metadata's outputs, because a request without `explain: true` does not give it (a client
    that asks for every listed output by name would be refused)."""
    output = model.explanation_output()
    if output is None:
        return None
    return {
        "explain": f"request parameter (bool, default false): true adds the output {output.name!r} "
        f"({output.datatype}, shape {[-1, *output.tail]}), each row's explanation as "
        f"POST /predict/{model.route}?explain=true gives it (method, unit and base value documented there)"
    }


def _metadata(name: str, served: Served) -> Response[bytes]:
    model = served.model
    metadata = ModelMetadata(
        name=name,
        versions=[served.version],
        platform=PLATFORM,
        inputs=[
            TensorMetadata(name=t.name, datatype=t.datatypes[0], shape=[-1, *t.tails[0]]) for t in model.tensor_inputs
        ],
        outputs=[TensorMetadata(name=t.name, datatype=t.datatype, shape=[-1, *t.tail]) for t in model.tensor_outputs],
        properties=model_properties(model),
    )
    return Response(_encode(metadata), media_type=JSON)


def _header_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The binary extension's JSON length (None: the body is all JSON). The content type is JSON, or
    none at all (tritonclient sends none); with binary data also application/octet-stream."""
    length = None
    content_type = octet = False
    for name, value in headers:
        if name == _BINARY_HEADER:
            if length is not None or not value.isdigit() or len(value) > 12:
                raise bad_request(f"header Inference-Header-Content-Length: {value[:32]!r} is not one byte count")
            length = int(value)
        elif name == b"content-type":
            content_type = True
            octet = value.lower().startswith(b"application/octet-stream")
    if content_type and not (octet and length is not None):
        check_json_content_type(headers)
    return length


# The infer routes as Litestar's router names them (service.asgi answers them directly, by these templates).
INFER_TEMPLATES = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
_OCTET_STREAM = "application/octet-stream"


class InferEndpoint:
    """POST .../infer: the body read under the limit, the answer as JSON (or JSON and binary outputs),
    refusals counted. `await endpoint(scope, receive)` is service.asgi's direct route (the model's name and
    version from the path parameters that Litestar's router or service.asgi put in the scope); the Litestar
    handlers below call `respond` for the same."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.limit = plane.settings.max_body_bytes
        self.max_batch = plane.settings.max_batch

    async def __call__(self, scope: Scope, receive: Receive) -> bytes | tuple[bytes, list[tuple[bytes, bytes]]]:
        """The response body: JSON, or with binary outputs the body and its headers."""
        params = scope["path_params"]
        name, wanted = params["name"], params.get("version")
        try:
            served = served_model(self.plane, name, wanted)
            header_length = _header_length(scope["headers"])
            body = await read_body(scope, receive, self.limit)
            if header_length is not None and header_length > len(body):
                raise bad_request(
                    f"header Inference-Header-Content-Length: {header_length} is more than the body "
                    f"({len(body)} bytes)",
                    "size",
                )
            try:
                answer, json_length = await infer(name, served, body, self.max_batch, header_length)
            except UnicodeDecodeError:  # msgspec's error for a string that is not UTF-8: not JSON (RFC 8259 §8.1)
                raise not_utf8() from None
        except ServiceError as error:
            if error.reason != NOT_COUNTED and name in self.plane.names:
                count_refusal(name, error.reason)
            raise
        if json_length is None:
            return answer
        # The headers in the order Litestar's Response sends them (tests/service/test_direct_routes.py)
        return answer, [(_BINARY_HEADER, b"%d" % json_length), (b"content-type", _OCTET_STREAM.encode())]

    async def respond(self, request: Request) -> Response[bytes]:
        """The answer as a Litestar Response (the routes' Litestar handlers)."""
        answer = await self(request.scope, request.receive)
        if isinstance(answer, bytes):
            return Response(answer, media_type=JSON)
        body, headers = answer
        length = headers[0][1].decode()
        return Response(body, media_type=_OCTET_STREAM, headers={"Inference-Header-Content-Length": length})


def v2_router(plane: DataPlane, model_classes: dict[str, Any], endpoint: InferEndpoint) -> Router:
    """Every V2 route, bound to this data plane, answering errors in the protocol's shape; `endpoint`
    answers the infer routes (service.asgi answers it directly too)."""
    common: dict[str, Any] = {"tags": ["inference protocol (V2)"], "sync_to_thread": False}
    per_model: dict[str, Any] = {"operation_class": model_operation(plane.names), **common}
    lookup_errors = error_responses(400, 404, 503)

    @get(
        "/",
        summary="Server metadata",
        responses=success(ServerMetadata, msgspec.json.decode(SERVER), "server"),
        **common,
    )
    def server() -> Response[bytes]:
        return Response(SERVER, media_type=JSON)

    @get("/health/live", summary="Liveness (status only, empty body)", responses=empty(200, "live"), **common)
    def live() -> Response[bytes]:
        return _status(200)

    @get(
        "/health/ready",
        summary="Readiness, as /health/ready (status only, empty body)",
        responses={**empty(200, "ready"), **empty(400, "not ready")},
        **common,
    )
    def ready() -> Response[bytes]:
        return _status(200 if plane.ready else 400)

    metadata_docs = {"responses": {**success(ModelMetadata, MODEL_METADATA, "metadata"), **lookup_errors}, **per_model}

    @get("/models/{name:str}", summary="Model metadata: versions, input and output tensors", **metadata_docs)
    def model_metadata(name: FromPath[str]) -> Response[bytes]:
        return _metadata(name, served_model(plane, name, None))

    @get("/models/{name:str}/versions/{version:str}", summary="Model metadata of one version", **metadata_docs)
    def version_metadata(name: FromPath[str], version: FromPath[str]) -> Response[bytes]:
        return _metadata(name, served_model(plane, name, version))

    ready_docs = {"responses": {**empty(200, "ready"), **empty(400, "not ready"), **error_responses(404)}, **per_model}

    @get("/models/{name:str}/ready", summary="Model readiness (status only, empty body)", **ready_docs)
    def model_ready(name: FromPath[str]) -> Response[bytes]:
        return _readiness(plane, name, None)

    @get("/models/{name:str}/versions/{version:str}/ready", summary="Readiness of one version", **ready_docs)
    def version_ready(name: FromPath[str], version: FromPath[str]) -> Response[bytes]:
        return _readiness(plane, name, version)

    requests = {
        f"{name}: {summary}": value
        for name, model_class in model_classes.items()
        for summary, value in model_class.docs.tensor_requests.items()
    }
    infer_docs: dict[str, Any] = {
        "status_code": 200,
        "description": infer_description(model_classes),
        "dependencies": body_documentation(InferenceRequest, examples(requests), "the input tensors"),
        "responses": {
            **success(InferenceResponse, INFER_RESPONSE, "the output tensors"),
            **error_responses(400, 404, 413, 415, 503),
        },
        "operation_class": per_model["operation_class"],
        "tags": common["tags"],
    }

    @post("/models/{name:str}/infer", summary="Inference", **infer_docs)
    async def infer_latest(request: Request, name: FromPath[str]) -> Response[bytes]:
        return await endpoint.respond(request)

    @post("/models/{name:str}/versions/{version:str}/infer", summary="Inference on one version", **infer_docs)
    async def infer_version(request: Request, name: FromPath[str], version: FromPath[str]) -> Response[bytes]:
        return await endpoint.respond(request)

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
