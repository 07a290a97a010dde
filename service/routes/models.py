"""GET /models and GET /models/{name}: what is loaded, from descriptions encoded once at start-up."""

from __future__ import annotations

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from service.errors import ApiError
from service.registry import ServiceState
from service.routes.body import JsonBody
from service.routes.docs import responses
from service.schemas import ModelInfo, ModelList

_MODEL_EXAMPLE = {
    "name": "heart",
    "version": "20261122T033459Z-1eaa01b9",
    "sha256": "1eaa01b981293e1a64218d22ac5b50e065618af2a9b4857e50bd4c36c013b33e",
    "created_at": "2026-11-22T03:34:59Z",
    "loaded_at": "2026-11-22T04:00:00Z",
    "threshold": 0.36,
    "labels": ["no disease", "disease"],
    "metrics": {"cv": {"roc_auc": {"mean": 0.899, "std": 0.049}}, "test": {"roc_auc": 0.952, "accuracy": 0.902}},
    "inputs": {"features": ["..."], "onnx": {"name": "features", "dtype": "float32", "shape": [-1, 13]}},
}


def models_routes(state: ServiceState) -> list[HTTPRouteHandler]:
    def registry_bytes() -> tuple[bytes, dict[str, bytes]]:
        if state.registry is None:
            raise ApiError(503, "not_ready", "the models are not loaded yet")
        return state.registry.listing, state.registry.infos

    @get(
        "/models",
        summary="The loaded models",
        tags=["models"],
        sync_to_thread=False,
        responses=responses(ModelList, {"models": [_MODEL_EXAMPLE]}, errors=(503,)),
    )
    def list_models() -> JsonBody:
        return JsonBody(registry_bytes()[0])

    @get(
        "/models/{name:str}",
        summary="One loaded model: version, checksum, threshold, metrics, inputs",
        tags=["models"],
        sync_to_thread=False,
        # 400 in the one error shape: Litestar documents its own (different) shape for a route with a
        # path parameter unless the route says otherwise.
        responses=responses(ModelInfo, _MODEL_EXAMPLE, errors=(400, 404, 503)),
    )
    def model_info(name: FromPath[str]) -> JsonBody:
        infos = registry_bytes()[1]
        if name not in infos:
            known = ", ".join(infos)
            raise ApiError(404, "model_not_found", f"no model named {name[:64]!r}; loaded: {known}")
        return JsonBody(infos[name])

    return [list_models, model_info]
