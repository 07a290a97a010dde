"""The service's one error type, and how a msgspec decoding failure becomes one.

A `ServiceError` carries everything every protocol needs to answer it: the HTTP status, the public
`code` (`validation_failed`, `malformed_json`, ...), a message, the offending fields, and the
`reason` class counted in `modelserve_validation_failures_total` — chosen where the error is raised,
never guessed later from the message. Each protocol renders it in its own shape
(`rest_body` here for /predict and the rest; service.api.v2 for the Open Inference Protocol).

Anything unexpected is logged by `internal_error` with its type and location only (an exception's
message may quote input values) and answered as a bare 500.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Mapping, Sequence

import msgspec
import numpy as np

logger = logging.getLogger("service.errors")

_encode = msgspec.json.Encoder().encode

# Reason classes of modelserve_validation_failures_total (a small fixed set of label values).
MALFORMED_JSON = "malformed_json"
TOO_LARGE = "too_large"
CONTENT_TYPE = "content_type"
CLIENT_CLOSED = "client_closed"
QUERY = "query"
UNKNOWN_FIELD = "unknown_field"
MISSING_REQUIRED = "missing_required"
CATEGORY = "category"
RANGE = "range"
SIZE = "size"
DATATYPE = "datatype"
SCHEMA = "schema"
BLANK_IMAGE = "blank_image"
REPEATED_KEY = "repeated_key"  # a JSON object with a key given twice (service.api.repeated_keys)
NOT_COUNTED = ""  # not the client's request at fault (not ready, no such model, internal)


class ServiceError(Exception):
    """A refused request: status, public code, message, offending fields and the metric's reason class."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Sequence[tuple[str, str]] = (),
        reason: str = NOT_COUNTED,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reason = status, code, message, reason
        self.fields = list(fields)

    def rest_body(self) -> bytes:
        """`{"error": {"code", "message", "fields": [{"field", "reason"}]}}` as JSON bytes."""
        return _encode_text(
            lambda clean: {
                "error": {
                    "code": self.code,
                    "message": clean(self.message),
                    "fields": [{"field": clean(f), "reason": clean(r)} for f, r in self.fields],
                }
            }
        )

    def one_line(self) -> str:
        """The fields (or the message) as one sentence, for protocols whose errors are a single string."""
        if self.fields:
            return "; ".join(f"{field}: {reason}" for field, reason in self.fields)
        return self.message


def _encode_text(shape: Callable[[Callable[[str], str]], object]) -> bytes:
    """Encode, replacing lone surrogates (quoted from a request) if the plain text cannot be encoded."""
    try:
        return _encode(shape(lambda text: text))
    except UnicodeEncodeError:
        return _encode(shape(lambda text: text.encode("utf-8", "backslashreplace").decode("utf-8")))


def encode_message(message: str) -> bytes:
    """`{"error": "<message>"}`: the Open Inference Protocol's error body."""
    return _encode_text(lambda clean: {"error": clean(message)})


def invalid(fields: list[tuple[str, str]], reason: str) -> ServiceError:
    """A 422 naming each offending field."""
    count = len(fields)
    message = f"{count} invalid field{'s' if count != 1 else ''}: {fields[0][0]}"
    return ServiceError(422, "validation_failed", message, fields, reason)


def malformed(detail: str) -> ServiceError:
    return ServiceError(400, "malformed_json", f"the body is not valid JSON: {detail}", reason=MALFORMED_JSON)


def not_ready() -> ServiceError:
    return ServiceError(503, "not_ready", "the models are not loaded yet")


def join_path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def internal_error(error: BaseException, route: str | None) -> ServiceError:
    """Never echo the exception: its message may hold input values. Log type and location only."""
    frames = traceback.extract_tb(error.__traceback__)
    where = [f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-5:]]
    logger.error("unhandled error", extra={"error_type": type(error).__name__, "stack": where, "route": route})
    return ServiceError(500, "internal_error", "internal error")


# ---- msgspec's validation errors ---------------------------------------------------------------
# msgspec reports one error as "<reason> - at `$.instances[3].age`" (no path at the root). Its wording
# is parsed here and nowhere else, to name the field and choose the reason class;
# tests/service/test_errors.py pins each wording, so a msgspec release that changes one fails there.
_AT = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
# The name runs to the last backtick: an unknown key may itself hold backticks.
_FIELD_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>.*)`$", re.DOTALL)
_ENUM = re.compile(r"^Invalid enum value ")
_SIZE = re.compile(r"^Expected `(array|str|object)` of length ")
_RANGE = re.compile(r"^Expected `(int|float)` [<>]=? ")


def _reason_class(reason: str) -> str:
    if _ENUM.match(reason):
        return CATEGORY
    if _SIZE.match(reason):
        return SIZE
    if _RANGE.match(reason):
        return RANGE
    return SCHEMA


def _dotted(path: str | None) -> str:
    """`$.instances[3].age` → `instances.3.age`; the root is ``."""
    if not path or path == "$":
        return ""
    return path.removeprefix("$").replace("[", ".").replace("]", "").lstrip(".")


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


def from_decode_error(
    error: msgspec.DecodeError, body: bytes, choices: Mapping[str, str] | None = None
) -> ServiceError:
    """A msgspec error as a ServiceError: 400 if the body is not JSON at all, else 422 with the field path.

    msgspec validates while it parses, so a schema error early in the body can be reported before a
    syntax error later on; on that (error-only) path the body's syntax is checked on its own (as
    `Raw`, which skips values without judging them: `1e999` is valid JSON, just not a valid age).
    """
    if not isinstance(error, msgspec.ValidationError):
        return malformed(str(error))
    try:
        msgspec.json.decode(body, type=msgspec.Raw)
    except msgspec.DecodeError as syntax_error:
        return malformed(str(syntax_error))
    except RecursionError:
        # Nested deeper than msgspec's limit (1,000 levels), so the syntax cannot be checked by
        # decoding. A body cut short (or with stray closing brackets) is still told apart, in
        # linear time and on this error path only. A deep body whose brackets balance gets its schema error.
        if not _brackets_balance(body):
            return malformed("its brackets do not balance")
    return from_validation_error(error, choices)


def from_validation_error(error: msgspec.ValidationError, choices: Mapping[str, str] | None = None) -> ServiceError:
    """A 422 naming the field msgspec's error points at, with the reason class of its wording."""
    match = _AT.match(str(error))
    reason = match["reason"] if match else str(error)
    field = _dotted(match["path"] if match else None)
    if named := _FIELD_NAMED.match(reason):
        field = join_path(field, named["name"])
        if named["what"] == "missing required":
            return invalid([(field, "required field is missing")], MISSING_REQUIRED)
        return invalid([(field, "unknown field")], UNKNOWN_FIELD)
    reason_class = _reason_class(reason)
    if reason_class == CATEGORY and choices and (allowed := choices.get(field.rsplit(".", 1)[-1])):
        reason = f"{reason}: must be one of {allowed}"
    return invalid([(field or "body", reason)], reason_class)
