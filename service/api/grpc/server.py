"""One grpc.aio server per worker process, on the worker's event loop, started and stopped by the app's
lifespan (service.app). Several workers share SERVICE_GRPC_PORT with SO_REUSEPORT (the kernel spreads
connections over them), as granian's workers share the HTTP port. The message size limit is
SERVICE_MAX_BODY_BYTES: gRPC itself answers RESOURCE_EXHAUSTED above it, before the message is parsed.

The inference methods are registered with their messages parsed here rather than by grpc (the
generated `add_..._to_server` does that): grpc answers a message that is not valid protobuf with
UNKNOWN, which reads as a server fault; here it is INVALID_ARGUMENT, as REST answers malformed JSON 400.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2_grpc
from prometheus_client import Histogram

from service.api.grpc import inference_pb2 as pb
from service.api.grpc.service import REQUESTS, SERVICE_NAME, HealthService, InferenceService
from service.dataplane import DataPlane
from service.metrics import HTTP_LATENCY_BUCKETS

# The gRPC counterpart of litestar_request_duration_seconds: from the message received to the answer made
# (the server's own HTTP/2 work aside), every outcome included, per method.
DURATION = Histogram(
    "modelserve_grpc_request_duration_seconds",
    "gRPC call duration, in seconds, by method",
    ["method"],
    buckets=HTTP_LATENCY_BUCKETS,
)

_REQUESTS = {
    "ServerLive": pb.ServerLiveRequest,
    "ServerReady": pb.ServerReadyRequest,
    "ModelReady": pb.ModelReadyRequest,
    "ServerMetadata": pb.ServerMetadataRequest,
    "ModelMetadata": pb.ModelMetadataRequest,
    "ModelInfer": pb.ModelInferRequest,
}


def _handler(name: str, method: Callable[..., Awaitable[Message]], request: type[Message]) -> Any:
    duration = DURATION.labels(name)
    with_message = name == "ModelInfer"  # its bytes too: a single row of a learned form is read from them

    async def call(raw: bytes, context: grpc.aio.ServicerContext) -> Message:
        started = time.perf_counter()
        try:
            try:
                message = request.FromString(raw)
            except DecodeError:
                REQUESTS.labels(name, grpc.StatusCode.INVALID_ARGUMENT.name).inc()
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the {request.__name__} message is not protobuf")
            if with_message:
                return await method(message, context, raw)
            return await method(message, context)
        finally:
            duration.observe(time.perf_counter() - started)

    return grpc.unary_unary_rpc_method_handler(call, response_serializer=lambda answer: answer.SerializeToString())


async def start(plane: DataPlane) -> grpc.aio.Server:
    """The gRPC server of this worker, listening on SERVICE_HOST:SERVICE_GRPC_PORT."""
    settings = plane.settings
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
        ]
    )
    service = InferenceService(plane)
    handlers = {name: _handler(name, getattr(service, name), request) for name, request in _REQUESTS.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    health_pb2_grpc.add_HealthServicer_to_server(HealthService(plane), server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    server.add_insecure_port(f"{host}:{settings.grpc_port}")
    await server.start()
    return server


async def stop(server: grpc.aio.Server, grace: float) -> None:
    """No new calls; those in flight finish within `grace` seconds (SERVICE_DRAIN_SECONDS)."""
    await server.stop(grace)
