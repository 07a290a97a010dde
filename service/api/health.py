"""GET /health/live and GET /health/ready.

Liveness answers from a constant: it must stay cheap and must not depend on the models, or a slow
model would get a healthy process restarted. Readiness is 200 only once every model is verified
and self-checked (and 503 again while shutting down). Neither is written to the access log: probes
every few seconds from every kubelet would drown the lines that matter. Both are answered through
service.asgi's fast path (`health_endpoints`) and declared here for routing and OpenAPI.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import Receive, Scope

from service.api.docs import ERROR_EXAMPLES, JSON, example
from service.dataplane import DataPlane
from service.errors import ServiceError
from service.schemas import ErrorBody, Health

LIVE = b'{"status":"live"}'
READY = b'{"status":"ready"}'


def health_endpoints(plane: DataPlane) -> dict[str, Any]:
    """Path → the endpoint answering it: JSON bytes, or a ServiceError (503) while not ready."""
    not_ready = ServiceError(503, "not_ready", "the models are not loaded and checked yet")

    async def live(scope: Scope, receive: Receive) -> bytes:
        return LIVE

    async def ready(scope: Scope, receive: Receive) -> bytes:
        if plane.ready:
            return READY
        raise not_ready

    return {"/health/live": live, "/health/ready": ready}


def health_routes(endpoints: dict[str, Any]) -> list[HTTPRouteHandler]:
    code, message, fields = ERROR_EXAMPLES[503]
    not_ready_example = {"error": {"code": code, "message": message, "fields": fields}}

    @get(
        "/health/live",
        summary="Liveness: the process answers",
        tags=["health"],
        responses={200: ResponseSpec(Health, examples=[example("live", {"status": "live"})])},
    )
    async def live(request: Request) -> Response[bytes]:
        return Response(await endpoints["/health/live"](request.scope, request.receive), media_type=JSON)

    @get(
        "/health/ready",
        summary="Readiness: every model verified and self-checked",
        tags=["health"],
        responses={
            200: ResponseSpec(Health, examples=[example("ready", {"status": "ready"})]),
            503: ResponseSpec(ErrorBody, description="not ready", examples=[example("not ready", not_ready_example)]),
        },
    )
    async def ready(request: Request) -> Response[bytes]:
        return Response(await endpoints["/health/ready"](request.scope, request.receive), media_type=JSON)

    return [live, ready]
