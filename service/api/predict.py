"""POST /predict/<route> and /predict/<route>/batch for every served model: JSON ↔ data-plane calls.

An endpoint checks the content type and the query (`?threshold=` where the model allows it), reads the
body under the limit, decodes it with the model's own request schema (msgspec, strict: a string is not
a number), and hands rows or a matrix to the data plane; the model builds the answer, encoded here.
Refusals are counted in modelserve_validation_failures_total by the reason their ServiceError carries.

The endpoints answer through service.asgi's fast path; each route is also declared as a Litestar
handler (routing of other spellings such as a trailing slash, and OpenAPI) that calls the same endpoint.
Handlers read their bodies by hand rather than declaring a `data` parameter, because Litestar's body
path converts loosely (`strict=False`: "45" would become 45) and answers every decoding problem with the
same 400; reading here keeps 400 (not JSON) apart from 422 (JSON of the wrong shape).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import msgspec
import numpy as np
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.types import Receive, Scope
from msgspec import Meta

from service.api.body import check_json_content_type, not_utf8, parse_options, read_body, take_flag
from service.api.docs import JSON, ExplainOperation, ThresholdOperation, body_documentation, examples, responses
from service.api.repeated_keys import refuse_repeated_keys
from service.dataplane import DataPlane
from service.errors import NOT_COUNTED, ServiceError, from_decode_error
from service.metrics import count_refusal

_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=16)
def batch_type(item: type[msgspec.Struct], route: str, max_batch: int) -> type[msgspec.Struct]:
    """`{"instances": [item, ...]}` with 1..max_batch items (the limit is a setting, hence a factory)."""
    instances = Annotated[list[item], Meta(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]
    name = f"{route.title()}Batch"
    return msgspec.defstruct(name, [("instances", instances)], forbid_unknown_fields=True, module=__name__)


class PredictEndpoint:
    """One prediction route of one model: `await endpoint(scope, receive)` → the answer's JSON bytes."""

    __slots__ = ("batch", "decode", "echo", "limit", "model", "plane", "schema", "threshold_allowed")

    def __init__(self, plane: DataPlane, model: str, model_class: Any, *, batch: bool) -> None:
        self.plane, self.model, self.batch = plane, model, batch
        self.limit = plane.settings.max_body_bytes
        self.threshold_allowed = model_class.overridable_threshold
        self.echo = None if batch else model_class.input_echo  # `?pixels=true`: the input the model saw
        self.schema = (
            batch_type(model_class.request, model_class.route, plane.settings.max_batch)
            if batch
            else (model_class.request)
        )
        self.decode = msgspec.json.Decoder(self.schema).decode

    async def __call__(self, scope: Scope, receive: Receive) -> bytes:
        try:
            check_json_content_type(scope["headers"])
            query, echo = take_flag(scope["query_string"], self.echo)
            threshold, explain = parse_options(query, self.threshold_allowed)
            body = await read_body(scope, receive, self.limit)
            served = self.plane.get(self.model)
            model = served.model
            request, rows = self._read(body, model)
            if threshold is None:
                threshold = model.threshold
            if self.batch:
                if explain:  # refused before any inference; rows that fail validation never got here
                    model.check_explainable(len(request.instances))
                matrix = rows
                outputs, decisions = served.predict_matrix(matrix, threshold)
                answer = model.answer_batch(outputs, decisions, matrix, threshold)
                if explain:
                    answer = model.explained(answer, await served.explain(matrix, outputs, decisions))
                return _encode(answer)
            row = rows
            if explain:
                model.check_explainable(1)
            output, decision = await served.predict_one(row, threshold)
            answer = model.answer(output, decision, row, threshold)
            if echo:
                answer = msgspec.structs.replace(answer, **{self.echo: np.asarray(row, dtype=float).tolist()})
            if explain:
                single = np.array([row], dtype=np.float32)
                explanations = await served.explain(single, np.asarray([output]), np.asarray([decision]))
                answer = model.explained(answer, explanations)
            return _encode(answer)
        except ServiceError as error:
            if error.reason != NOT_COUNTED:
                count_refusal(self.model, error.reason)
            raise

    def _read(self, body: bytes, model: Any) -> tuple[Any, Any]:
        """The decoded request and its rows (the batch's matrix, or the one row); a repeated key is
        refused in preference to any other fault, as the value it would name is ambiguous."""
        try:
            request = self.decode(body)
            # rows: the batch's matrix, or the one row; keys: how many distinct keys the body held, at least
            rows, keys = model.read_matrix(request.instances) if self.batch else model.read_row(request, "")
        except msgspec.DecodeError as error:
            if isinstance(error, msgspec.ValidationError):
                refuse_repeated_keys(body, 0)
            raise from_decode_error(error, body, model.choices) from None
        except UnicodeDecodeError:  # not a DecodeError: a string or key that is not UTF-8
            raise not_utf8() from None
        except ServiceError:
            refuse_repeated_keys(body, 0)
            raise
        refuse_repeated_keys(body, keys + self.batch)  # + the key "instances"
        return request, rows


def predict_endpoints(plane: DataPlane, model_classes: dict[str, Any]) -> dict[str, PredictEndpoint]:
    """Route path → its endpoint, for every served model."""
    endpoints = {}
    for name, model_class in model_classes.items():
        path = f"/predict/{model_class.route}"
        endpoints[path] = PredictEndpoint(plane, name, model_class, batch=False)
        endpoints[f"{path}/batch"] = PredictEndpoint(plane, name, model_class, batch=True)
    return endpoints


def _handler(endpoint: PredictEndpoint) -> Any:
    async def handle(request: Request) -> Response[bytes]:
        return Response(await endpoint(request.scope, request.receive), media_type=JSON)

    return handle


def predict_routes(endpoints: dict[str, PredictEndpoint], model_classes: dict[str, Any]) -> list[HTTPRouteHandler]:
    """The prediction routes as Litestar handlers (routing, OpenAPI), answered by `endpoints`."""
    common: dict[str, Any] = {"status_code": 200, "tags": ["predict"]}
    handlers = []
    for model_class in model_classes.values():
        docs, path = model_class.docs, f"/predict/{model_class.route}"
        operation = ThresholdOperation if model_class.overridable_threshold else ExplainOperation
        threshold = {"operation_class": operation}
        one, many = endpoints[path], endpoints[f"{path}/batch"]
        max_batch = one.plane.settings.max_batch
        handlers += [
            post(
                path,
                summary=f"{docs.summary}: one instance",
                description=docs.description,
                dependencies=body_documentation(one.schema, examples(docs.requests), "one instance", docs.one_of),
                responses=responses(model_class.response, docs.response, explained_example=docs.explained_response),
                **threshold,
                **common,
            )(_handler(one)),
            post(
                f"{path}/batch",
                summary=f"{docs.summary}: up to MAX_BATCH instances",
                description=docs.batch_description,
                dependencies=body_documentation(
                    many.schema,
                    examples({"a batch": {"instances": list(docs.requests.values())}}),
                    f"1 to {max_batch} instances",
                ),
                responses=responses(
                    model_class.batch_response, docs.batch_response, explained_example=docs.explained_batch_response
                ),
                **threshold,
                **common,
            )(_handler(many)),
        ]
    return handlers
