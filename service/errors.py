"""The one place where failures become HTTP answers, all in one JSON shape:

    {"error": {"code": "validation_failed", "message": "...",
               "fields": [{"field": "instances.3.age", "reason": "..."}]}}

`fields` is always present (empty unless the error is about particular values). Malformed JSON is
400, a schema violation 422, a body over the limit 413, a wrong content type 415, an unknown route or
model 404. Anything unexpected is a 500 whose body says nothing about the request and whose log line
names only the exception type and where it was raised (an exception's message may quote input values).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Mapping

import msgspec
import numpy as np
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Send

from service.schemas import ErrorBody, ErrorDetail, ErrorField

logger = logging.getLogger("service.errors")
JSON = "application/json"

_encode = msgspec.json.Encoder().encode

# msgspec reports one error as "<reason> - at `$.instances[3].age`"; the path is absent at the root.
_AT = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
# The name runs to the last backtick: an unknown key may itself hold backticks (it was reported as `body`).
_FIELD_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>.*)`$", re.DOTALL)
_ENUM = re.compile(r"^Invalid enum value ")
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


class ApiError(Exception):
    """An error with a status, a code and (for validation) the offending fields."""

    def __init__(self, status: int, code: str, message: str, fields: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []

    def body(self) -> bytes:
        try:
            return _encode(self._shape(lambda text: text))
        except UnicodeEncodeError:  # a field name quoted from the request held a lone surrogate
            return _encode(self._shape(lambda text: text.encode("utf-8", "backslashreplace").decode("utf-8")))

    def _shape(self, clean: Callable[[str], str]) -> ErrorBody:
        fields = [ErrorField(field=clean(f), reason=clean(r)) for f, r in self.fields]
        return ErrorBody(error=ErrorDetail(code=self.code, message=clean(self.message), fields=fields))


_REASON_BY_STATUS = {400: "malformed_json", 413: "too_large", 415: "content_type", 499: "client_closed"}
_REASON_PATTERNS = (  # first match wins: the class of a 422 from the first offending field's reason
    ("unknown query parameter", "query"),
    ("strictly between 0 and 1", "query"),
    ("unknown field", "unknown_field"),
    ("required field is missing", "missing_required"),
    ("no ink found", "blank_image"),
    ("Invalid enum value", "category"),
    ("length", "size"),
    ("<", "range"),
    (">", "range"),
)


def reason_class(error: ApiError) -> str:
    """A small, fixed set of values for the validation-failure metric's `reason` label."""
    if error.status != 422:
        return _REASON_BY_STATUS.get(error.status, "other")
    reason = error.fields[0][1] if error.fields else error.message
    return next((name for pattern, name in _REASON_PATTERNS if pattern in reason), "schema")


def invalid(fields: list[tuple[str, str]]) -> ApiError:
    """A 422 naming each offending field."""
    count = len(fields)
    return ApiError(
        422, "validation_failed", f"{count} invalid field{'s' if count != 1 else ''}: {fields[0][0]}", fields
    )


def join_path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _dotted(path: str | None) -> str:
    """`$.instances[3].age` → `instances.3.age`; the root is ``."""
    if not path or path == "$":
        return ""
    return path.removeprefix("$").replace("[", ".").replace("]", "").lstrip(".")


def _malformed(error: msgspec.DecodeError) -> ApiError:
    return ApiError(400, "malformed_json", f"the body is not valid JSON: {error}")


def _brackets_balance(body: bytes) -> bool:
    """Outside strings, as many `[`/`{` as `]`/`}`, and every string closed (not a full syntax check).

    Vectorised (a few numpy passes, ~30 ms for 4 MiB) so that this error path cannot be made
    expensive: a quote counts unless an odd run of backslashes precedes it, and a bracket counts
    when an even number of counted quotes precedes it."""
    if b'"' not in body:  # no strings: bytes.count alone (deep nesting is mostly brackets)
        return body.count(b"[") + body.count(b"{") == body.count(b"]") + body.count(b"}")
    text = np.frombuffer(body, dtype=np.uint8)
    position = np.arange(len(text), dtype=np.int32)
    # index of the last non-backslash at or before each position (-1 if none)
    last_plain = np.maximum.accumulate(np.where(text != ord("\\"), position, -1))
    run_before = position - 1 - np.concatenate(([-1], last_plain[:-1]))  # backslashes just before
    quotes = (text == ord('"')) & (run_before % 2 == 0)
    outside = np.cumsum(quotes, dtype=np.int32) % 2 == 0  # a closing quote itself counts as outside
    opened = np.count_nonzero(((text == ord("[")) | (text == ord("{"))) & outside)
    closed = np.count_nonzero(((text == ord("]")) | (text == ord("}"))) & outside)
    return np.count_nonzero(quotes) % 2 == 0 and opened == closed


def from_decode_error(error: msgspec.DecodeError, body: bytes, choices: Mapping[str, str] | None = None) -> ApiError:
    """A msgspec error as an ApiError: 400 if the body is not JSON at all, else 422 with the field path.

    msgspec validates while it parses, so a schema error early in the body can be reported before a
    syntax error later on; on that (error-only) path the body's syntax is checked on its own (as
    `Raw`, which skips values without judging them: `1e999` is valid JSON, just not a valid age).
    """
    if not isinstance(error, msgspec.ValidationError):
        return _malformed(error)
    try:
        msgspec.json.decode(body, type=msgspec.Raw)
    except msgspec.DecodeError as syntax_error:
        return _malformed(syntax_error)
    except RecursionError:
        # Nested deeper than msgspec's limit (1,000 levels), so the syntax cannot be checked by
        # decoding. A body cut short (or with stray closing brackets) is still told apart, in
        # linear time and on this error path only: it used to get a 422 naming the first field.
        # A deep body whose brackets balance gets its schema error.
        if not _brackets_balance(body):
            return ApiError(400, "malformed_json", "the body is not valid JSON: its brackets do not balance")
    match = _AT.match(str(error))
    reason = match["reason"] if match else str(error)
    field = _dotted(match["path"] if match else None)
    if named := _FIELD_NAMED.match(reason):
        field = join_path(field, named["name"])
        reason = "required field is missing" if named["what"] == "missing required" else "unknown field"
    elif _ENUM.match(reason) and choices:
        allowed = choices.get(field.rsplit(".", 1)[-1])
        if allowed:
            reason = f"{reason}: must be one of {allowed}"
    return invalid([(field or "body", reason)])


def _respond(error: ApiError) -> Response[bytes]:
    return Response(content=error.body(), status_code=error.status, media_type=JSON)


def api_error_handler(_: Request, error: ApiError) -> Response[bytes]:
    return _respond(error)


def http_exception_handler(_: Request, error: HTTPException) -> Response[bytes]:
    """Litestar's own errors (unknown route, wrong method, body too large, ...) in the same shape."""
    status = error.status_code
    if status >= 500:
        return internal_error_handler(_, error)
    code = _CODES_BY_STATUS.get(status, f"http_{status}")
    message = {
        404: "no such route",
        405: "method not allowed on this route",
        413: "the request body is larger than the limit",
    }.get(status, str(error.detail))
    response = _respond(ApiError(status, code, message))
    if error.headers:
        response.headers.update(error.headers)  # e.g. Allow on a 405
    return response


def internal_error(error: Exception, route: str | None) -> ApiError:
    """Never echo the exception: its message may hold input values. Log type and location only."""
    frames = traceback.extract_tb(error.__traceback__)
    where = [f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-5:]]
    logger.error("unhandled error", extra={"error_type": type(error).__name__, "stack": where, "route": route})
    return ApiError(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error")


def internal_error_handler(request: Request, error: Exception) -> Response[bytes]:
    return _respond(internal_error(error, request.scope.get("path_template")))


async def send_error(send: Send, error: ApiError) -> None:
    """The error response as raw ASGI messages, for routes served outside Litestar's handlers
    (service.app's direct routes): the same status, headers and body as `api_error_handler`'s."""
    body = error.body()
    headers = [(b"content-type", JSON.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
