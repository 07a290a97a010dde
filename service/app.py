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

The app is Litestar (routing, handlers, OpenAPI, exception handlers) holding the data plane, the
protocol adapters' routes (service.api) and the lifespan; service.asgi wraps it for request ids, the
access log, the HTTP metrics and the measured fast path of the prediction routes (/predict and V2 infer).
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

from service import asgi, shutdown
from service.api.admin import admin_routes
from service.api.handlers import EXCEPTION_HANDLERS
from service.api.health import health_routes
from service.api.models import models_routes
from service.api.predict import predict_endpoints, predict_routes
from service.api.v2.errors import error_body as v2_error_body
from service.api.v2.routes import INFER_TEMPLATES, InferEndpoint, v2_router
from service.api.web import web_routes
from service.artifact import ArtifactError
from service.dataplane import DataPlane
from service.logs import AccessLog, configure_logging
from service.memory import settle_heap
from service.metrics import set_ready
from service.metrics_dir import MetricsController
from service.models import MODEL_CLASSES
from service.reload import poll_current
from service.settings import Settings, SettingsError
from service.supervision import exit_with_supervisor

logger = logging.getLogger("service.app")
API_VERSION = "1.0.0"


def _lifespan(plane: DataPlane, access_log: AccessLog, serve_grpc: bool) -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            await plane.load_all()
        except ArtifactError as error:
            logger.critical(
                f"start-up failed: {error}",
                extra={"model": error.model, "version": error.version, "file": error.file, "reason": error.reason},
            )
            raise
        settle_heap()  # the start-up's objects out of the collector's sight (service.memory says why)
        plane.ready = True
        set_ready(plane.names, True)
        versions = {name: served.version for name, served in plane.served.items()}
        logger.info("ready", extra={"models": versions, "seconds": round(time.perf_counter() - started, 3)})
        if plane.settings.server == "granian" and multiprocessing.parent_process() is not None:
            shutdown.drain_granian_worker_on_sigterm(plane, plane.settings.shutdown_delay)
        grpc_server = None
        if serve_grpc and plane.settings.grpc_port:
            from service.api.grpc import server as grpc_api  # only where gRPC is served

            grpc_server = await grpc_api.start(plane)
        interval = plane.settings.reload_interval
        poller = asyncio.create_task(poll_current(plane, interval)) if interval > 0 else None
        try:
            yield
        finally:
            plane.ready = False
            set_ready(plane.names, False)
            if poller is not None:
                poller.cancel()
            if grpc_server is not None:  # new calls refused, those in flight finish (as on REST)
                await grpc_api.stop(grpc_server, plane.settings.drain_seconds)
            access_log.flush()  # the lines of the last loop turn

    return lifespan


def model_classes(settings: Settings) -> dict[str, Any]:
    """The Model class of every model the settings serve (SERVICE_MODELS)."""
    unknown = [name for name in settings.models if name not in MODEL_CLASSES]
    if unknown:
        known = ", ".join(sorted(MODEL_CLASSES))
        raise SettingsError(f"invalid settings: SERVICE_MODELS: no model named {', '.join(unknown)} (known: {known})")
    return {name: MODEL_CLASSES[name] for name in settings.models}


def create_app(settings: Settings | None = None, serve_grpc: bool = False) -> Litestar:
    """The service for `settings` (default: from the environment). Models load when the app starts.
    With `serve_grpc` (the servers' workers) the lifespan also serves gRPC on SERVICE_GRPC_PORT."""
    settings = settings or Settings.from_env()
    classes = model_classes(settings)
    plane = DataPlane(settings)
    shutdown.watch(plane)
    predict = predict_endpoints(plane, classes)
    v2_infer = InferEndpoint(plane)
    access_log = AccessLog(settings.access_log, settings.log_level)
    app = Litestar(
        route_handlers=[
            *predict_routes(predict, classes),
            *models_routes(plane),
            *health_routes(plane),
            *admin_routes(plane),
            v2_router(plane, classes, v2_infer),  # the Open Inference Protocol (KServe V2) under /v2
            MetricsController,  # Litestar's /metrics, minus the live gauges of dead workers
            *(web_routes(plane) if settings.web else []),  # the page at / and the model cards
        ],
        lifespan=[_lifespan(plane, access_log, serve_grpc)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,  # logging is configured once by `python -m service` (service.logs)
        openapi_config=OpenAPIConfig(
            title="modelserve",
            version=API_VERSION,
            description="Predictions from checksummed ONNX artifacts: " + ", ".join(classes) + ".",
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
    app.state.plane = plane
    direct = [
        *(asgi.DirectRoute("POST", path, endpoint) for path, endpoint in predict.items()),
        *(asgi.DirectRoute("POST", template, v2_infer, v2_error_body) for template in INFER_TEMPLATES),
        *(  # the one spelling tritonclient and KServe clients use, per served model: found by exact path
            asgi.DirectRoute(
                "POST", INFER_TEMPLATES[0], v2_infer, v2_error_body, f"/v2/models/{name}/infer", {"name": name}
            )
            for name in classes
        ),
    ]
    asgi.install(app, plane, direct, access_log)
    return app


def app_from_env() -> Litestar:
    """Factory for the servers (`service.app:app_from_env`, factory=True): each worker process builds its
    own app, and sets up logging itself (spawned workers do not inherit the parent's handlers)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    exit_with_supervisor()  # a worker process stops when its supervisor dies (either server)
    return create_app(settings, serve_grpc=True)
