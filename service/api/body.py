"""Reading a prediction request by hand: content type, query string, and the body under a size limit.

The handlers take the raw bytes and decode them with msgspec themselves, instead of declaring a
`data` parameter, because Litestar's body path converts loosely (`strict=False`: "45" would become
45) and answers every decoding problem with the same 400. Reading here keeps 400 (not JSON) apart
from 422 (JSON of the wrong shape) and costs less than the framework's generic path.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from litestar.types import Receive, Scope

from service.contract import is_threshold_override
from service.errors import CLIENT_CLOSED, CONTENT_TYPE, MALFORMED_JSON, QUERY, TOO_LARGE, ServiceError, invalid

_CONTENT_TYPE = b"content-type"
_CONTENT_LENGTH = b"content-length"
_UTF8 = {b"utf-8", b"utf8"}


def check_json_content_type(headers: list[tuple[bytes, bytes]]) -> None:
    """415 unless the body is declared as JSON (`application/json` or `application/*+json`, UTF-8)."""
    for name, value in headers:
        if name == _CONTENT_TYPE:
            media, _, params = value.partition(b";")
            media = media.strip().lower()
            if media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json")):
                charset = params.strip().lower()
                if not charset.startswith(b"charset=") or charset[8:].strip(b'" ') in _UTF8:
                    return
            break
    raise ServiceError(
        415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json", reason=CONTENT_TYPE
    )


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == _CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> ServiceError:
    message = f"the request body is larger than the limit of {limit} bytes"
    return ServiceError(413, "body_too_large", message, reason=TOO_LARGE)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed `limit` bytes: from the
    Content-Length header before reading anything, else while streaming."""
    length = _content_length(scope["headers"])
    if length is not None and length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            message = "the client went away before sending the body"
            raise ServiceError(499, "client_closed_request", message, reason=CLIENT_CLOSED)
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_query(query_string: bytes, allow_threshold: bool) -> float | None:
    """The `threshold` override (strictly between 0 and 1) if allowed and given; any other parameter
    is refused rather than ignored, so that a misspelt `treshold` cannot silently do nothing."""
    return parse_options(query_string, allow_threshold, allow_explain=False)[0]


def parse_options(
    query_string: bytes, allow_threshold: bool, *, allow_explain: bool = True
) -> tuple[float | None, bool]:
    """parse_query, plus `explain` (`true` or `false`, once): whether to explain each answer."""
    if not query_string:
        return None, False
    threshold: float | None = None
    explain: bool | None = None
    try:
        pairs = parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise invalid([("query", "the query string is not valid")], QUERY) from None
    for key, value in pairs:
        if key == "explain" and allow_explain:
            if explain is not None:
                raise invalid([("explain", "given more than once")], QUERY)
            if value not in ("true", "false"):
                raise invalid([("explain", f"must be true or false, got {value[:32]!r}")], QUERY)
            explain = value == "true"
            continue
        if key != "threshold" or not allow_threshold:
            raise invalid([(key[:64] or "query", "unknown query parameter")], QUERY)
        if threshold is not None:
            raise invalid([("threshold", "given more than once")], QUERY)
        try:
            threshold = float(value)
        except ValueError:
            threshold = float("nan")
        if not is_threshold_override(threshold):
            raise invalid([("threshold", "must be a number strictly between 0 and 1")], QUERY)
    return threshold, bool(explain)


def not_utf8() -> ServiceError:
    """msgspec raises UnicodeDecodeError, not a DecodeError, for a string or key holding bytes that are
    not UTF-8 (`{"thal": "\\xff"}`). JSON must be UTF-8 (RFC 8259 §8.1): the body is malformed, a 400."""
    return ServiceError(
        400, "malformed_json", "the body is not valid JSON: a string is not valid UTF-8", reason=MALFORMED_JSON
    )


def take_flag(query_string: bytes, flag: str | None) -> tuple[bytes, bool]:
    """`?<flag>=true|false` taken out of the query (the rest goes on to parse_query); a flag the
    route does not have stays in, and parse_query refuses it as unknown."""
    if flag is None or not query_string:
        return query_string, False
    try:
        pairs = parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return query_string, False  # parse_query names the problem
    values = [value for key, value in pairs if key == flag]
    if not values:
        return query_string, False
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise invalid([(flag, "must be given once, as true or false")], QUERY)
    rest = "&".join(f"{quote(key)}={quote(value)}" for key, value in pairs if key != flag)
    return rest.encode(), values[0] == "true"
