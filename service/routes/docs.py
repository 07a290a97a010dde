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

from service.contract import HEART_EXAMPLE
from service.schemas import ErrorBody

# sklearn's first digit (a 0) and the same digit drawn dark on light as an image.
ZERO_PIXELS = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8,
               8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10,
               0, 0, 0]  # fmt: skip
ZERO_IMAGE = [[255 - v * 15 for v in ZERO_PIXELS[row * 8 : row * 8 + 8]] for row in range(8)]
EXAMPLE_VERSION = "20261122T033459Z-1eaa01b9"

HEART_RESPONSE = {
    "probability": 0.7344,
    "threshold": 0.36,
    "prediction": 1,
    "label": "disease",
    "missing": [],
    "version": EXAMPLE_VERSION,
}
HEART_BATCH_RESPONSE = {
    "predictions": [
        {"probability": 0.7344, "prediction": 1, "label": "disease", "missing": []},
        {"probability": 0.1021, "prediction": 0, "label": "no disease", "missing": ["ca", "thal"]},
    ],
    "version": EXAMPLE_VERSION,
    "threshold": 0.36,
}
_DIGIT_PROBABILITIES = [0.9991, 0.0, 0.0001, 0.0, 0.0002, 0.0001, 0.0003, 0.0, 0.0001, 0.0001]
DIGIT_RESPONSE = {
    "digit": 0,
    "probability": 0.9991,
    "probabilities": _DIGIT_PROBABILITIES,
    "threshold": 0.89,
    "confident": True,
    "version": "20261122T033533Z-9f9911a2",
}
DIGIT_BATCH_RESPONSE = {
    "predictions": [{"digit": 0, "probability": 0.9991, "probabilities": _DIGIT_PROBABILITIES, "confident": True}],
    "version": "20261122T033533Z-9f9911a2",
    "threshold": 0.89,
}
_PARTIAL_PATIENT = {**HEART_EXAMPLE, "ca": None, "thal": None}

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


HEART_REQUEST_EXAMPLES = [
    example("the tutorial's patient", HEART_EXAMPLE),
    example("a record without ca and thal", _PARTIAL_PATIENT),
]
HEART_BATCH_EXAMPLES = [example("two patients", {"instances": [HEART_EXAMPLE, _PARTIAL_PATIENT]})]
DIGIT_REQUEST_EXAMPLES = [
    example("8×8 ink counts (sklearn digits)", {"pixels": ZERO_PIXELS}),
    example("a grey image, dark ink on light", {"image": ZERO_IMAGE}),
]
DIGIT_BATCH_EXAMPLES = [example("one digit", {"instances": [{"pixels": ZERO_PIXELS}]})]


# `image` and `pixels` may each be null or absent, but exactly one of them must be an array.
_EXACTLY_ONE_DIGIT_FORM = [
    {"required": [name], "properties": {name: {"type": "array"}}} for name in ("pixels", "image")
]


def exact_request_schema(body_type: type) -> dict[str, Any]:
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
    if body_type.__name__ == "DigitInput":
        extra["one_of"] = _EXACTLY_ONE_DIGIT_FORM
    return extra


def body_documentation(body_type: type, examples: list[Example], description: str) -> dict[str, Provide]:
    """A dependency that exists only so that OpenAPI shows `body_type` as the request body."""

    def document_body(data: Any) -> None:
        return None

    # Set by hand: with postponed annotations a local type could not be resolved from a string.
    body = Body(description=description, examples=examples, schema_extra=exact_request_schema(body_type))
    document_body.__annotations__ = {"data": Annotated[body_type, body], "return": None}

    return {"documented_body": Provide(document_body, sync_to_thread=False)}


def responses(
    success: type, success_example: Any, errors: tuple[int, ...] = (400, 413, 415, 422, 503)
) -> dict[int, ResponseSpec]:
    """The 200 body with an example, and each error status in the one error shape, with an example.

    503 is documented wherever a handler needs the loaded models: an ASGI host that skipped the
    lifespan (or a request racing shutdown) gets it, in the same shape."""
    specs = {
        200: ResponseSpec(
            data_container=success,
            description="the prediction",
            examples=[example("a prediction", success_example)],
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
class ThresholdOperation(Operation):
    """An operation that also documents the `?threshold=` override read by body.parse_query."""

    def __post_init__(self) -> None:
        threshold = Parameter(
            name="threshold",
            param_in="query",
            required=False,
            description="override the model's decision threshold; strictly between 0 and 1",
            schema=Schema(type=OpenAPIType.NUMBER, exclusive_minimum=0.0, exclusive_maximum=1.0),
            examples={"lenient": example("flag more patients", 0.3)},
        )
        self.parameters = [*(self.parameters or []), threshold]
