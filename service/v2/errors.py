"""The protocol's error shape, `{"error": "<message>"}`, and the one place where V2 failures become HTTP.

The rest of the service answers `{"error": {"code", "message", "fields"}}` (service.errors); the V2
router installs `V2_EXCEPTION_HANDLERS` instead, so that the shared helpers it reuses (body size, content
type, readiness: they raise service.errors.ApiError) answer in the protocol's shape on its routes.
Statuses: a request the model cannot take (JSON, envelope, datatype, shape, values) is 400, an unknown
model or version 404, a body over the limit 413, a wrong content type 415, models not loaded 503.
"""

from __future__ import annotations

import logging
import traceback

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from service.errors import JSON, ApiError
from service.v2.schemas import V2ErrorBody

logger = logging.getLogger("service.v2")
_encode = msgspec.json.Encoder().encode


class V2Error(Exception):
    """A failure on a V2 route: status, message, and the class counted in modelserve_validation_failures."""

    def __init__(self, status: int, message: str, reason: str = "schema") -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


def bad_request(message: str, reason: str = "schema") -> V2Error:
    return V2Error(400, message, reason)


def _message_of(error: ApiError) -> str:
    if error.fields:
        return "; ".join(f"{field}: {reason}" for field, reason in error.fields)
    return error.message


def error_response(status: int, message: str) -> Response[bytes]:
    try:
        body = _encode(V2ErrorBody(error=message))
    except UnicodeEncodeError:  # a name quoted from the request held a lone surrogate
        body = _encode(V2ErrorBody(error=message.encode("utf-8", "backslashreplace").decode("utf-8")))
    return Response(content=body, status_code=status, media_type=JSON)


def _v2_error(_: Request, error: V2Error) -> Response[bytes]:
    return error_response(error.status, error.message)


def _api_error(_: Request, error: ApiError) -> Response[bytes]:
    return error_response(error.status, _message_of(error))


def _http_exception(request: Request, error: HTTPException) -> Response[bytes]:
    if error.status_code >= 500:
        return _internal(request, error)
    response = error_response(error.status_code, str(error.detail))
    if error.headers:
        response.headers.update(error.headers)  # e.g. Allow on a 405
    return response


def _internal(request: Request, error: Exception) -> Response[bytes]:
    """Never echo the exception (its message may quote input values): log type and location only."""
    where = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(error.__traceback__)[-5:]]
    logger.error(
        "unhandled error",
        extra={"error_type": type(error).__name__, "stack": where, "route": request.scope.get("path_template")},
    )
    return error_response(500, "internal error")


V2_EXCEPTION_HANDLERS = {
    V2Error: _v2_error,
    ApiError: _api_error,
    HTTPException: _http_exception,
    Exception: _internal,
}
