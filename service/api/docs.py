"""OpenAPI documentation for handlers that read their bodies by hand (see body.py).

Litestar documents a request body only from a `data` parameter, and such a parameter would make it
parse the body itself. So each prediction route gets a documentation-only dependency whose signature
declares `data` (Litestar documents the first dependency that has one; the handler never asks for
it, so it is never resolved: no runtime cost). The `threshold` query parameter is added to the
operation the same way Litestar's own `operation_class` hook allows. tests/service/test_openapi.py
checks that every route's body, parameters, responses and examples are in /schema/openapi.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, Operation, Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import Body

from service.models.base import EXPLAIN_LIMIT
from service.schemas import ErrorBody

JSON = "application/json"

ERROR_EXAMPLES = {
    400: ("malformed_json", "the body is not valid JSON: JSON is malformed: invalid character (byte 8)", []),
    413: ("body_too_large", "the request body is larger than the limit of 4194304 bytes", []),
    415: ("unsupported_media_type", "send the body as JSON with Content-Type: application/json", []),
    422: (
        "validation_failed",
        "1 invalid field: instances.3.age",
        [{"field": "instances.3.age", "reason": "Expected `float` <= 120.0"}],
    ),
    404: ("model_not_found", "no model named 'cats'; loaded: heart, digits", []),
    503: ("not_ready", "the models are not loaded yet", []),
}


def example(summary: str, value: Any) -> Example:
    return Example(summary=summary, value=value)


def examples(values: dict[str, Any]) -> list[Example]:
    """OpenAPI examples from summary → value."""
    return [example(summary, value) for summary, value in values.items()]


def exact_request_schema(body_type: type, one_of: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The request body's constraints as msgspec enforces them, for Litestar's `schema_extra`.

    Litestar's own schema for a Struct drops what the decoder checks inside arrays (the range of
    each pixel and grey level, the 8..512 length of an image row), any constraint equal to 0 (`ca`
    had no `minimum`: Litestar skips falsy values), and that unknown fields are refused
    (`additionalProperties: false`); so a client or a fuzzer reading the document took `ca: -7`,
    out-of-range pixels or extra fields for valid input. msgspec's JSON Schema of the same type is
    exact: its properties replace Litestar's (nested Structs stay `$ref`s to components that their
    own routes fix the same way).
    """
    (_,), components = msgspec.json.schema_components([body_type], ref_template="#/components/schemas/{name}")
    exact = components[body_type.__name__]
    extra: dict[str, Any] = {
        "properties": exact["properties"],
        "additional_properties": exact.get("additionalProperties", True),
    }
    if one_of:
        extra["one_of"] = one_of
    return extra


def body_documentation(
    body_type: type, examples: list[Example], description: str, one_of: list[dict[str, Any]] | None = None
) -> dict[str, Provide]:
    """A dependency that exists only so that OpenAPI shows `body_type` as the request body."""

    def document_body(data: Any) -> None:
        return None

    # Set by hand: with postponed annotations a local type could not be resolved from a string.
    body = Body(description=description, examples=examples, schema_extra=exact_request_schema(body_type, one_of))
    document_body.__annotations__ = {"data": Annotated[body_type, body], "return": None}

    return {"documented_body": Provide(document_body, sync_to_thread=False)}


def responses(
    success: type,
    success_example: Any,
    errors: tuple[int, ...] = (400, 413, 415, 422, 503),
    explained_example: Any = None,
) -> dict[int, ResponseSpec]:
    """The 200 body with an example, and each error status in the one error shape, with an example.

    503 is documented wherever a handler needs the loaded models: an ASGI host that skipped the
    lifespan (or a request racing shutdown) gets it, in the same shape."""
    specs = {
        200: ResponseSpec(
            data_container=success,
            description="the prediction",
            examples=[
                example("a prediction", success_example),
                *([example("with ?explain=true", explained_example)] if explained_example is not None else []),
            ],
        )
    }
    for status in errors:
        code, message, fields = ERROR_EXAMPLES[status]
        specs[status] = ResponseSpec(
            data_container=ErrorBody,
            description=code.replace("_", " "),
            examples=[example(code, {"error": {"code": code, "message": message, "fields": fields}})],
        )
    return specs


@dataclass
class ExplainOperation(Operation):
    """An operation that also documents `?explain=` (read by body.parse_options)."""

    def __post_init__(self) -> None:
        explain = Parameter(
            name="explain",
            param_in="query",
            required=False,
            description=(
                f"`true` adds an `explanation` to each answer (at most {EXPLAIN_LIMIT} rows per request): heart, "
                "exact Shapley values of P(disease) per feature against the version's background.json, adding up to "
                "the probability minus `base`; digits, an 8×8 occlusion map of the predicted digit's probability. "
                "Any value other than `true` or `false` is a 422 naming `explain`"
            ),
            schema=Schema(type=OpenAPIType.STRING, enum=["true", "false"]),
            examples={"explain": example("explain the answer", "true")},
        )
        self.parameters = [*(self.parameters or []), explain]


@dataclass
class ThresholdOperation(ExplainOperation):
    """An operation that also documents the `?threshold=` override read by body.parse_query."""

    def __post_init__(self) -> None:
        super().__post_init__()
        threshold = Parameter(
            name="threshold",
            param_in="query",
            required=False,
            description="override the model's decision threshold; strictly between 0 and 1",
            schema=Schema(type=OpenAPIType.NUMBER, exclusive_minimum=0.0, exclusive_maximum=1.0),
            examples={"lenient": example("flag more patients", 0.3)},
        )
        self.parameters = [*(self.parameters or []), threshold]
