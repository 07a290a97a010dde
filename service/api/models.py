"""GET /models and GET /models/{name}: what is loaded, from the data plane's descriptions."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from service.api.docs import JSON, responses
from service.dataplane import DataPlane
from service.errors import ServiceError, not_ready
from service.schemas import ModelInfo, ModelList

_encode = msgspec.json.Encoder().encode
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


def models_routes(plane: DataPlane) -> list[HTTPRouteHandler]:
    def infos() -> dict[str, ModelInfo]:
        if not plane.served:
            raise not_ready()
        return {name: served.info for name, served in plane.served.items() if served.info is not None}

    @get(
        "/models",
        summary="The loaded models",
        tags=["models"],
        sync_to_thread=False,
        responses=responses(ModelList, {"models": [_MODEL_EXAMPLE]}, errors=(503,)),
    )
    def list_models() -> Response[bytes]:
        return Response(_encode(ModelList(models=list(infos().values()))), media_type=JSON)

    @get(
        "/models/{name:str}",
        summary="One loaded model: version, checksum, threshold, metrics, inputs",
        tags=["models"],
        sync_to_thread=False,
        # 400 in the one error shape: Litestar documents its own (different) shape for a route with a
        # path parameter unless the route says otherwise.
        responses=responses(ModelInfo, _MODEL_EXAMPLE, errors=(400, 404, 503)),
    )
    def model_info(name: FromPath[str]) -> Response[bytes]:
        loaded = infos()
        if name not in loaded:
            known = ", ".join(loaded)
            raise ServiceError(404, "model_not_found", f"no model named {name[:64]!r}; loaded: {known}")
        return Response(_encode(loaded[name]), media_type=JSON)

    return [list_models, model_info]
