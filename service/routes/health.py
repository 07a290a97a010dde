"""GET /health/live and GET /health/ready.

Liveness answers from a constant: it must stay cheap and must not depend on the models, or a slow
model would get a healthy process restarted. Readiness is 200 only once every model is verified
and self-checked (and 503 again while shutting down). Neither is written to the access log: probes
every few seconds from every kubelet would drown the lines that matter.
"""

from __future__ import annotations

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from service.registry import ServiceState
from service.routes.body import JsonBody
from service.routes.docs import ERROR_EXAMPLES, example
from service.schemas import ErrorBody, Health

LIVE = b'{"status":"live"}'
READY = b'{"status":"ready"}'
NOT_READY = b'{"error":{"code":"not_ready","message":"the models are not loaded and checked yet","fields":[]}}'
# The Open Inference Protocol's probes (service.v2.routes) are probes too.
HEALTH_PATHS = frozenset({"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready"})


def health_routes(state: ServiceState) -> list[HTTPRouteHandler]:
    @get(
        "/health/live",
        summary="Liveness: the process answers",
        tags=["health"],
        sync_to_thread=False,
        responses={200: ResponseSpec(Health, examples=[example("live", {"status": "live"})])},
    )
    def live() -> JsonBody:
        return JsonBody(LIVE)

    code, message, fields = ERROR_EXAMPLES[503]
    not_ready_example = {"error": {"code": code, "message": message, "fields": fields}}

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
    def ready() -> JsonBody:
        if state.ready:
            return JsonBody(READY)
        return JsonBody(NOT_READY, 503)

    return [live, ready]
