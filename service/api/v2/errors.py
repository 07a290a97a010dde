"""The protocol's error shape, `{"error": "<message>"}`: the V2 router's exception handlers.

Every failure is a service.errors.ServiceError whatever raised it (the shared body and content-type
checks, the data plane, a model refusing a tensor); here it is rendered as the protocol's one string.
Statuses: a request the model cannot take (JSON, envelope, datatype, shape, values) is 400, an unknown
model or version 404, a body over the limit 413, a wrong content type 415, models not loaded 503.
"""

from __future__ import annotations

from litestar import Request, Response
from litestar.exceptions import HTTPException

from service.api.docs import JSON
from service.errors import SCHEMA, ServiceError, encode_message, internal_error


def bad_request(message: str, reason: str = SCHEMA) -> ServiceError:
    """A request the model cannot take, counted under `reason`."""
    return ServiceError(400, "bad_request", message, reason=reason)


def error_body(error: ServiceError) -> bytes:
    """The protocol's body for a refusal (service.asgi's direct routes answer with it too)."""
    return encode_message(error.one_line())


def error_response(status: int, message: str) -> Response[bytes]:
    return Response(content=encode_message(message), status_code=status, media_type=JSON)


def _service_error(_: Request, error: ServiceError) -> Response[bytes]:
    return Response(content=error_body(error), status_code=error.status, media_type=JSON)


def _http_exception(request: Request, error: HTTPException) -> Response[bytes]:
    if error.status_code >= 500:
        return _internal(request, error)
    response = error_response(error.status_code, str(error.detail))
    if error.headers:
        response.headers.update(error.headers)  # e.g. Allow on a 405
    return response


def _internal(request: Request, error: Exception) -> Response[bytes]:
    internal_error(error, request.scope.get("path_template"))  # logs type and location only
    return error_response(500, "internal error")


V2_EXCEPTION_HANDLERS = {
    ServiceError: _service_error,
    HTTPException: _http_exception,
    Exception: _internal,
}
