"""GET /health/live and GET /health/ready.

Liveness answers from a constant: it must stay cheap and must not depend on the models, or a slow
model would get a healthy process restarted. Readiness is 200 only once every model is verified
and self-checked (and 503 again while shutting down). Neither is written to the access log: probes
every few seconds from every kubelet would drown the lines that matter. Both are plain Litestar
handlers: `/health/live` is the framework's own ceiling in `make bench`.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from service.api.docs import ERROR_EXAMPLES, JSON, example
from service.dataplane import DataPlane
from service.errors import ServiceError
from service.schemas import ErrorBody, Health

LIVE = b'{"status":"live"}'
READY = b'{"status":"ready"}'


def health_routes(plane: DataPlane) -> list[HTTPRouteHandler]:
    code, message, fields = ERROR_EXAMPLES[503]
    not_ready_example = {"error": {"code": code, "message": message, "fields": fields}}

    @get(
        "/health/live",
        summary="Liveness: the process answers",
        tags=["health"],
        sync_to_thread=False,
        responses={200: ResponseSpec(Health, examples=[example("live", {"status": "live"})])},
    )
    def live() -> Response[bytes]:
        return Response(LIVE, media_type=JSON)

    @get(
        "/health/ready",
        summary="Readiness: every model verified and self-checked",
        tags=["health"],
        sync_to_thread=False,
        responses={
            200: ResponseSpec(Health, examples=[example("ready", {"status": "ready"})]),
            503: ResponseSpec(ErrorBody, description="not ready", examples=[example("not ready", not_ready_example)]),
        },
    )
    def ready() -> Response[bytes]:
        if plane.ready:
            return Response(READY, media_type=JSON)
        raise ServiceError(503, "not_ready", "the models are not loaded and checked yet")

    return [live, ready]
