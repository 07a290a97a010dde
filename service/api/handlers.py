"""How failures become HTTP answers on every route but the Open Inference Protocol's (service.api.v2):

    {"error": {"code": "validation_failed", "message": "...",
               "fields": [{"field": "instances.3.age", "reason": "..."}]}}

`fields` is always present (empty unless the error is about particular values). Malformed JSON is
400, a schema violation 422, a body over the limit 413, a wrong content type 415, an unknown route or
model 404. Anything unexpected is a 500 whose body says nothing about the request.
"""

from __future__ import annotations

from litestar import Request, Response
from litestar.exceptions import HTTPException

from service.api.docs import JSON
from service.errors import ServiceError, internal_error

_CODES_BY_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    503: "not_ready",
}
_MESSAGES = {
    404: "no such route",
    405: "method not allowed on this route",
    413: "the request body is larger than the limit",
}


def _respond(error: ServiceError) -> Response[bytes]:
    return Response(content=error.rest_body(), status_code=error.status, media_type=JSON)


def service_error_handler(_: Request, error: ServiceError) -> Response[bytes]:
    return _respond(error)


def http_exception_handler(request: Request, error: HTTPException) -> Response[bytes]:
    """Litestar's own errors (unknown route, wrong method, body too large, ...) in the same shape."""
    status = error.status_code
    if status >= 500:
        return internal_error_handler(request, error)
    code = _CODES_BY_STATUS.get(status, f"http_{status}")
    response = _respond(ServiceError(status, code, _MESSAGES.get(status, str(error.detail))))
    if error.headers:
        response.headers.update(error.headers)  # e.g. Allow on a 405
    return response


def internal_error_handler(request: Request, error: Exception) -> Response[bytes]:
    return _respond(internal_error(error, request.scope.get("path_template")))


EXCEPTION_HANDLERS = {
    ServiceError: service_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
