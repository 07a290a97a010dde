"""The one raw-ASGI layer, composed around the Litestar app's ASGI handler; no other module writes ASGI messages.

`install(app, ...)` wraps `app.asgi_handler`, the handler Litestar calls for every HTTP request once it
has set up the scope (lifespan events never reach it), so Litestar stays the app that servers and tests run.

Around every HTTP request, 404s and 413s included (Litestar middleware runs only for requests that
matched a route): the request id (the caller's `X-Request-ID` if it is plain, else a new one, echoed
back), the access log line, the HTTP metrics (service.http_metrics says why here), and
`Connection: close` while draining. Probes get no request id and no access line (one every few seconds
per pod is noise); `/metrics` is not measured at all.

The measured fast path: the prediction routes (/predict and the Open Inference Protocol's infer) are
answered here without Litestar's router and handler layers (`DirectRoute`). Why: a single prediction
suspends while it waits for its micro-batch, and every layer between the server and the endpoint is a
coroutine suspended and resumed with it; measured in-process, Litestar's layers took 35 µs of a 72 µs
single prediction (37 µs without), and building a `litestar.Response` for bytes already encoded another
~15 µs. A direct route is named by its Litestar route template, which labels its metrics and access
lines as Litestar's would. One without path parameters, or one concrete path of a template with its
parameters' values, is found by exact path before any routing (any other spelling, such as a trailing
slash, goes through Litestar's router to the same endpoint); a template with parameters by the template
Litestar's router gives (a cached lookup, ~2 µs), its parameters put in the scope as Litestar puts them.
The routes stay declared in Litestar (OpenAPI, other spellings), and errors are answered here in the
route's protocol shape exactly as the app's exception handlers answer them
(tests/service/test_direct_routes.py compares the two). What the fast path skips: Litestar's Host
header syntax check and its per-request Request object, which these endpoints never read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from litestar import Litestar
from litestar.types import Message, Receive, Scope, Send
from litestar.utils.path import normalize_path

from service.dataplane import DataPlane
from service.errors import ServiceError, internal_error
from service.http_metrics import EXCLUDED, UNMATCHED, HttpMetrics
from service.logs import REQUEST_ID_HEADER, AccessLog, request_id_from

Headers = list[tuple[bytes, bytes]]
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
# Probe paths: no request id, no access line.
HEALTH_PATHS = frozenset({"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready"})
# A direct route's 200: JSON bytes, or (body, headers) for any other body (the headers name its content type).
Answer = bytes | tuple[bytes, Headers]


class DirectRoute(NamedTuple):
    """A route answered here. `answer` raises a ServiceError before anything is sent, or gives the 200."""

    method: str
    template: str  # as Litestar's router names the route (`/v2/models/{name}/infer`): the metrics' label
    answer: Callable[[Scope, Receive], Awaitable[Answer]]
    error_body: Callable[[ServiceError], bytes] = ServiceError.rest_body  # the protocol's error shape
    # One concrete path of a template with parameters, found by exact path, with its parameters' values
    # (`/v2/models/heart/infer`, {"name": "heart"}): the common spelling skips even the routing lookup.
    path: str | None = None
    path_params: dict[str, str] | None = None


async def send_body(send: Send, status: int, body: bytes, headers: Headers = JSON_HEADERS) -> None:
    """A whole response in two messages."""
    await send({"type": "http.response.start", "status": status, "headers": [*headers, content_length(body)]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def content_length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", b"%d" % len(body))


class ServiceASGI:
    """Litestar's ASGI handler (its exception handling and router) with the concerns above around it."""

    def __init__(self, app: Litestar, plane: DataPlane, direct: Iterable[DirectRoute], access_log: AccessLog) -> None:
        self.app, self.plane, self.access_log = app, plane, access_log
        self.inner = app.asgi_handler
        self.http_metrics = HttpMetrics()
        declared = {(method, route.path_format) for route in app.routes for method in getattr(route, "methods", ())}
        self.exact: dict[tuple[str, str], DirectRoute] = {}  # templates without parameters: by exact path
        self.templated: dict[tuple[str, str], DirectRoute] = {}  # the others: by the template routing gives
        for route in direct:
            key = (route.method, route.template)
            if key not in declared:  # a label no request would get from Litestar: a bug in the caller
                raise ValueError(f"direct route {key} is not a route template of the app")
            if route.path is not None:
                self.exact[(route.method, route.path)] = route
            else:
                (self.templated if "{" in route.template else self.exact)[key] = route

    def routing(self, scope: Any) -> tuple[str, dict[str, Any]]:
        """The route template and path parameters Litestar's router will find (its lookup is cached), or
        UNMATCHED."""
        path = scope["path"]
        if root_path := scope.get("root_path"):  # as Litestar's router strips it
            path = path.split(root_path, maxsplit=1)[-1]
        try:
            found = self.app.asgi_router.handle_routing(path=normalize_path(path), method=scope["method"])
        except Exception:  # NotFound, MethodNotAllowed: Litestar answers those itself
            return UNMATCHED, {}
        return found[4], found[3]

    def find(self, scope: Any) -> tuple[str, DirectRoute | None]:
        """The request's route template, and its direct route if it has one."""
        method = scope["method"]
        direct = self.exact.get((method, scope["path"]))
        if direct is not None:
            if direct.path_params is not None:
                scope["path_params"] = direct.path_params
            return direct.template, direct
        route, params = self.routing(scope)
        direct = self.templated.get((method, route))
        if direct is not None:
            scope["path_params"] = params  # where Litestar's router puts them
        return route, direct

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets (none today)
            await self.inner(scope, receive, send)
            return
        method = scope["method"]
        route, direct = self.find(scope)
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

        in_progress = self.http_metrics.in_progress(method, route)
        in_progress.inc()
        try:
            if direct is None:
                await self.inner(scope, receive, send_observed)
            else:  # every error is raised before anything is sent: an error never follows a started response
                try:
                    answer = await direct.answer(scope, receive)
                except ServiceError as error:
                    await send_body(send_observed, error.status, direct.error_body(error))
                except Exception as error:
                    await send_body(send_observed, 500, direct.error_body(internal_error(error, route)))
                else:
                    if type(answer) is bytes:
                        await send_body(send_observed, 200, answer)
                    else:
                        await send_body(send_observed, 200, *answer)
        finally:
            in_progress.dec()
            self.http_metrics.finished(method, route, status, time.perf_counter() - started)
            if request_id is not None and self.access_log.enabled:
                logged_route = None if route == UNMATCHED else route
                self.access_log.write(request_id, method[:16], logged_route, status, started)


def install(app: Litestar, plane: DataPlane, direct: Iterable[DirectRoute], access_log: AccessLog) -> None:
    """Put the layer around `app`'s ASGI handler; it is then `app.asgi_handler`."""
    app.asgi_handler = ServiceASGI(app, plane, direct, access_log)
