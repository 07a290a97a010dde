"""OpenAPI documentation of the V2 routes: request and response examples, and the protocol's error shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation

from service.api.docs import example
from service.api.v2.schemas import V2ErrorBody

EXAMPLE_VERSION = "20261122T033459Z-1eaa01b9"

INFER_RESPONSE = {
    "model_name": "heart",
    "model_version": EXAMPLE_VERSION,
    "id": "patient-1",
    "outputs": [
        {"name": "probability", "shape": [1], "datatype": "FP32", "data": [0.7344]},
        {"name": "label", "shape": [1], "datatype": "BYTES", "data": ["disease"]},
    ],
}
MODEL_METADATA = {
    "name": "digits",
    "versions": ["20261122T033533Z-9f9911a2"],
    "platform": "onnxruntime_onnx",
    "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
    "outputs": [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "digit", "datatype": "INT64", "shape": [-1]},
        {"name": "probability", "datatype": "FP32", "shape": [-1]},
    ],
    "properties": {
        "explain": "request parameter (bool, default false): true adds the output 'contributions' (FP64, shape "
        "[-1, 8, 8]), each row's explanation as POST /predict/digit?explain=true gives it (method, unit and base "
        "value documented there)"
    },
}
_ERRORS = {
    400: ("the request does not fit the model", "input 'age': 300 at row 0 is not within 1..120"),
    404: ("unknown model or version", "unknown model 'cats': this server has heart, digits"),
    413: ("the body is over the limit", "the request body is larger than the limit of 4194304 bytes"),
    415: ("not JSON", "send the body as JSON with Content-Type: application/json"),
    503: ("the models are not loaded yet", "the models are not loaded yet"),
}


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Each status in the protocol's error shape, with an example."""
    return {
        status: ResponseSpec(
            V2ErrorBody,
            description=_ERRORS[status][0],
            examples=[example(_ERRORS[status][0], {"error": _ERRORS[status][1]})],
        )
        for status in statuses
    }


def success(body: type, value: Any, description: str) -> dict[int, ResponseSpec]:
    return {200: ResponseSpec(body, description=description, examples=[example(description, value)])}


def empty(status: int, description: str) -> dict[int, ResponseSpec]:
    """A health answer: the status is the answer, the body is empty (as the protocol says)."""
    return {status: ResponseSpec(None, description=description)}


def model_operation(names: tuple[str, ...]) -> type[Operation]:
    """An operation class whose `name` path parameter is documented with the served models' names as
    examples, so that a reader (or a fuzzer's examples phase) reaches a real model and not only the 404."""

    @dataclass
    class ModelOperation(Operation):
        def __post_init__(self) -> None:
            for parameter in self.parameters or []:
                if parameter.name == "name" and parameter.param_in == "path":
                    parameter.description = "the model: " + " or ".join(names)
                    parameter.examples = {name: example(f"the {name} model", name) for name in names}

    return ModelOperation


def infer_description(model_classes: dict[str, Any]) -> str:
    """What each served model takes, from its declared tensors."""
    lines = [
        "Tensors as in the model's metadata (shape [N, ...]); `null` in `data`, or an optional input left out, "
        "is a missing value; `outputs` picks the outputs returned."
    ]
    for name, model_class in model_classes.items():
        inputs = ", ".join(
            f"`{t.name}` {'/'.join(t.datatypes)}{'' if t.required else ' (optional)'}"
            for t in model_class.tensor_inputs
        )
        threshold = (
            "; `parameters.threshold` overrides the decision threshold" if model_class.overridable_threshold else ""
        )
        lines.append(f"{name}: {inputs}{threshold}.")
    return "\n\n".join(lines)
