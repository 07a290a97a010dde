"""The Litestar application: `create_app(settings)` builds it; its lifespan loads and checks the models.

Start-up failure policy: FAIL FAST. If any model cannot be verified, loaded or self-checked, the
lifespan logs one JSON line naming the model, version, file and reason, and raises; uvicorn then
exits with a non-zero status (3) before it ever listens. When workers are child processes (granian,
or several uvicorn workers) `python -m service` runs the same checks first (`--check`) and exits 1
before starting any. Why, for Kubernetes:
- a bad artifact does not heal by waiting (the files are immutable and checksummed), so staying up
  "live but not ready" would only park a useless pod that shows Running 0/1 with no restarts;
- a crashing pod shows CrashLoopBackOff and `kubectl logs --previous` gives the reason, and a
  rolling update with a bad artifact stops at the first new pod while the old ReplicaSet serves on;
- a process that serves always has every model loaded, so no handler needs a half-loaded state.
Consequently /health/ready is 200 as soon as the server accepts connections; it turns 503 again
while the app shuts down.

Every request except the health probes and `/metrics` gets a request id (the caller's `X-Request-ID`
if it is plain, else a new one), echoed in the response's `X-Request-ID` header and written to the
access log. Every request except `/metrics` is counted and timed in Litestar's HTTP metrics
(service.http_metrics says why that happens here and not in route middleware).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Tag
from litestar.plugins.prometheus import PrometheusConfig
from litestar.types import Message, Receive, Send
from litestar.utils.path import normalize_path

from service import shutdown
from service.artifact import ArtifactError
from service.contract import MODEL_NAMES
from service.errors import EXCEPTION_HANDLERS
from service.http_metrics import UNMATCHED, HttpMetrics
from service.logs import REQUEST_ID_HEADER, AccessLog, configure_logging, request_id_from
from service.metrics import HTTP_LATENCY_BUCKETS, set_ready
from service.metrics_dir import MetricsController
from service.registry import ServiceState, load_registry
from service.reload import poll_current
from service.routes.admin import admin_routes
from service.routes.health import HEALTH_PATHS, health_routes
from service.routes.models import models_routes
from service.routes.predict import PredictEndpoint, predict_endpoints, predict_routes
from service.settings import Settings
from service.supervision import exit_with_supervisor
from service.v2.routes import v2_router

logger = logging.getLogger("service.app")
API_VERSION = "1.0.0"


class ServiceApp(Litestar):
    """Litestar with request ids, the access log and the HTTP metrics wrapped around everything, 404s
    and 413s included (Litestar middleware runs only for requests that matched a route)."""

    access_log: AccessLog
    http_metrics: HttpMetrics
    service_state: ServiceState
    # (method, exact path) → the prediction endpoint, called without Litestar's router and handler
    # layers. Why: a single prediction suspends while it waits for its micro-batch, and every layer
    # between the server and the endpoint is a coroutine suspended and resumed with it; measured
    # in-process, Litestar's layers took 35 µs of a 72 µs single prediction (37 µs without). The
    # routes stay declared in Litestar (OpenAPI, and any other spelling of the path, such as a
    # trailing slash, goes through Litestar's router to the same endpoint); the endpoint answers its
    # errors as the app's exception handlers do. What the direct path skips: Litestar's Host header
    # syntax check and its per-request Request object, which these endpoints never read.
    direct_routes: dict[tuple[str, str], PredictEndpoint]

    def route_template(self, scope: Any) -> str:
        """The route template Litestar's router will choose (its lookup is cached), or UNMATCHED."""
        path = scope["path"]
        if root_path := scope.get("root_path"):  # as Litestar's router strips it
            path = path.split(root_path, maxsplit=1)[-1]
        try:
            return self.asgi_router.handle_routing(path=normalize_path(path), method=scope["method"])[4]
        except Exception:  # NotFound, MethodNotAllowed: Litestar answers those itself
            return UNMATCHED

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        direct = self.direct_routes.get((scope["method"], scope["path"]))
        route = scope["path"] if direct is not None else self.route_template(scope)
        if route in self.http_metrics.excluded:  # scrapes: not measured, no request id, no access line
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if nothing was sent (the server answers 500)
        # Probes get no request id and no access line: one every few seconds per pod is noise.
        request_id = None if route in HEALTH_PATHS else request_id_from(scope["headers"])

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if request_id is not None:
                    message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
                if self.service_state.closing:  # draining: the client must not reuse this connection
                    message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        in_progress = self.http_metrics.in_progress(scope["method"], route)
        in_progress.inc()
        try:
            if direct is not None:
                await direct.serve_direct(scope, receive, send_observed)
            else:
                await super().__call__(scope, receive, send_observed)
        finally:
            in_progress.dec()
            method = scope["method"]
            self.http_metrics.finished(method, route, status, time.perf_counter() - started)
            if request_id is not None and self.access_log.enabled:
                logged_route = None if route == UNMATCHED else route
                self.access_log.write(request_id, method[:16], logged_route, status, started)


def _lifespan(state: ServiceState) -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            state.registry = await load_registry(state.settings)
        except ArtifactError as error:
            logger.critical(
                f"start-up failed: {error}",
                extra={"model": error.model, "version": error.version, "file": error.file, "reason": error.reason},
            )
            raise
        state.ready = True
        set_ready(MODEL_NAMES, True)
        versions = {name: p.version for name, p in state.registry.predictors.items()}
        logger.info("ready", extra={"models": versions, "seconds": round(time.perf_counter() - started, 3)})
        if state.settings.server == "granian" and multiprocessing.parent_process() is not None:
            shutdown.drain_granian_worker_on_sigterm(state, state.settings.shutdown_delay)
        interval = state.settings.reload_interval
        poller = asyncio.create_task(poll_current(state, interval)) if interval > 0 else None
        try:
            yield
        finally:
            state.ready = False
            set_ready(MODEL_NAMES, False)
            if poller is not None:
                poller.cancel()
            if isinstance(app, ServiceApp):
                app.access_log.flush()  # the lines of the last loop turn

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    """The service for `settings` (default: from the environment). Models load when the app starts."""
    settings = settings or Settings.from_env()
    state = ServiceState(settings=settings)
    prometheus = PrometheusConfig(
        app_name="modelserve",
        group_path=True,  # label by route template, not by raw path (bounded label values)
        exclude=["/metrics"],
        buckets=list(HTTP_LATENCY_BUCKETS),  # from 0.1 ms: a single prediction takes well under 1 ms
    )
    shutdown.watch(state)
    endpoints = predict_endpoints(state)
    app = ServiceApp(
        route_handlers=[
            *predict_routes(state, endpoints),
            *models_routes(state),
            *health_routes(state),
            *admin_routes(state),
            v2_router(state),  # the Open Inference Protocol (KServe V2) under /v2
            MetricsController,  # Litestar's /metrics, minus the live gauges of dead workers
        ],
        lifespan=[_lifespan(state)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,  # logging is configured once by `python -m service` (service.logs)
        openapi_config=OpenAPIConfig(
            title="modelserve",
            version=API_VERSION,
            description="Heart-disease and handwritten-digit predictions from checksummed ONNX artifacts.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            tags=[
                Tag(name="predict", description="predictions, one at a time or in batches"),
                Tag(name="models", description="what is loaded"),
                Tag(name="health", description="Kubernetes probes"),
            ],
            create_examples=False,
        ),
    )
    app.direct_routes = {("POST", path): endpoint for path, endpoint in endpoints.items()}
    app.access_log = AccessLog(settings.access_log, settings.log_level)
    app.http_metrics = HttpMetrics(prometheus)
    app.state.service = state
    app.service_state = state
    return app


def app_from_env() -> Litestar:
    """Factory for uvicorn (`service.app:app_from_env`, factory=True): each worker process builds its
    own app, and sets up logging itself (spawned workers do not inherit the parent's handlers)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    exit_with_supervisor()  # a worker process stops when its supervisor dies (either server)
    return create_app(settings)
