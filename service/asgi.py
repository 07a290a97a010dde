"""The one raw-ASGI layer, composed around the Litestar app's ASGI handler; no other module writes ASGI messages.

`install(app, ...)` wraps `app.asgi_handler`, the handler Litestar calls for every HTTP request once it
has set up the scope (lifespan events never reach it), so Litestar stays the app that servers and tests run.

Around every HTTP request, 404s and 413s included (Litestar middleware runs only for requests that
matched a route): the request id (the caller's `X-Request-ID` if it is plain, else a new one, echoed
back), the access log line, the HTTP metrics (service.http_metrics says why here), and
`Connection: close` while draining. Probes get no request id and no access line (one every few seconds
per pod is noise); `/metrics` is not measured at all.

The measured fast path: the prediction routes are answered here without Litestar's router and handler layers
(`DirectRoute`, by method and exact path). Why: a single prediction suspends while it waits for its
micro-batch, and every layer between the server and the endpoint is a coroutine suspended and resumed
with it; measured in-process, Litestar's layers took 35 µs of a 72 µs single prediction (37 µs
without), and building a `litestar.Response` for bytes already encoded another ~15 µs. The routes stay
declared in Litestar (OpenAPI, and any other spelling of the path, such as a trailing slash, goes
through Litestar's router to the same endpoint); errors are answered here exactly as the app's
exception handlers answer them (tests/service/test_direct_routes.py compares the two). What the fast
path skips: Litestar's Host header syntax check and its per-request Request object, which these
endpoints never read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Litestar
from litestar.types import Message, Receive, Scope, Send
from litestar.utils.path import normalize_path

from service.dataplane import DataPlane
from service.errors import ServiceError, internal_error
from service.http_metrics import EXCLUDED, UNMATCHED, HttpMetrics
from service.logs import REQUEST_ID_HEADER, AccessLog, request_id_from

JSON_HEADERS = ((b"content-type", b"application/json"),)
# Probe paths: no request id, no access line.
HEALTH_PATHS = frozenset({"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready"})

# A direct route's answer: the 200 body as JSON bytes, or a ServiceError raised before anything is sent.
DirectRoute = Callable[[Scope, Receive], Awaitable[bytes]]


async def send_json(send: Send, status: int, body: bytes) -> None:
    """A whole JSON response in two messages."""
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class ServiceASGI:
    """Litestar's ASGI handler (its exception handling and router) with the concerns above around it."""

    def __init__(
        self, app: Litestar, plane: DataPlane, direct: dict[tuple[str, str], DirectRoute], access_log: AccessLog
    ) -> None:
        self.app, self.plane, self.direct_routes, self.access_log = app, plane, direct, access_log
        self.inner = app.asgi_handler
        self.http_metrics = HttpMetrics()

    def route_template(self, scope: Any) -> str:
        """The route template Litestar's router will choose (its lookup is cached), or UNMATCHED."""
        path = scope["path"]
        if root_path := scope.get("root_path"):  # as Litestar's router strips it
            path = path.split(root_path, maxsplit=1)[-1]
        try:
            return self.app.asgi_router.handle_routing(path=normalize_path(path), method=scope["method"])[4]
        except Exception:  # NotFound, MethodNotAllowed: Litestar answers those itself
            return UNMATCHED

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets (none today)
            await self.inner(scope, receive, send)
            return
        direct = self.direct_routes.get((scope["method"], scope["path"]))
        route = scope["path"] if direct is not None else self.route_template(scope)
        if route in EXCLUDED:  # scrapes: not measured, no request id, no access line
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if nothing was sent (the server answers 500)
        request_id = None if route in HEALTH_PATHS else request_id_from(scope["headers"])
        plane = self.plane

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if request_id is not None:
                    message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
                if plane.closing:  # draining: the client must not reuse this connection
                    message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        in_progress = self.http_metrics.in_progress(scope["method"], route)
        in_progress.inc()
        try:
            if direct is None:
                await self.inner(scope, receive, send_observed)
            else:  # every error is raised before anything is sent: an error never follows a started response
                try:
                    body = await direct(scope, receive)
                except ServiceError as error:
                    await send_json(send_observed, error.status, error.rest_body())
                except Exception as error:
                    await send_json(send_observed, 500, internal_error(error, scope["path"]).rest_body())
                else:
                    await send_json(send_observed, 200, body)
        finally:
            in_progress.dec()
            method = scope["method"]
            self.http_metrics.finished(method, route, status, time.perf_counter() - started)
            if request_id is not None and self.access_log.enabled:
                logged_route = None if route == UNMATCHED else route
                self.access_log.write(request_id, method[:16], logged_route, status, started)


def install(app: Litestar, plane: DataPlane, direct: dict[tuple[str, str], DirectRoute], access_log: AccessLog) -> None:
    """Put the layer around `app`'s ASGI handler; it is then `app.asgi_handler`."""
    app.asgi_handler = ServiceASGI(app, plane, direct, access_log)
