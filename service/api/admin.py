"""POST /admin/reload: only registered when SERVICE_ADMIN_TOKEN is set (else the route is a 404).

When registered it is documented in OpenAPI like every other route (200, 401 and 409 with their
bodies), so that the schema fuzzer holds it to its contract too; when absent, it is absent from the
document as well.

The token is compared with `hmac.compare_digest` (time independent of where the strings differ).
200 with each model's outcome when nothing failed; 409 in the one error shape when a model's new
version was refused (the old version keeps serving), naming model, version, file and reason.
This reloads the worker that received the request; the others follow through their CURRENT poll.
"""

from __future__ import annotations

import hmac

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from service.api.docs import JSON, example
from service.dataplane import DataPlane
from service.errors import ServiceError
from service.reload import ReloadOutcome, reload_models
from service.schemas import ErrorBody, ReloadAnswer

_UNCHANGED = {"model": "heart", "result": "unchanged", "previous": "20261122T033459Z-1eaa01b9"}
_RELOAD_RESPONSES = {
    200: ResponseSpec(
        ReloadAnswer,
        description="every model reloaded or unchanged",
        examples=[example("nothing new", {"models": [{**_UNCHANGED, "version": _UNCHANGED["previous"]}]})],
    ),
    401: ResponseSpec(ErrorBody, description="no or wrong bearer token"),
    409: ResponseSpec(ErrorBody, description="a new version was refused; the old one keeps serving"),
}


def _authorised(request: Request, token: bytes) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    # compare_digest on every path, even a wrong scheme, so that the timing says nothing either
    same = hmac.compare_digest(given.strip().encode("utf-8", "replace"), token)
    return same and scheme.lower() == "bearer"


def admin_routes(plane: DataPlane) -> list[HTTPRouteHandler]:
    if plane.settings.admin_token is None:
        return []
    token = plane.settings.admin_token.get_secret_value().encode("utf-8")

    @post(
        "/admin/reload",
        status_code=200,
        summary="Reload changed CURRENT versions now (this worker)",
        description="Needs `Authorization: Bearer <SERVICE_ADMIN_TOKEN>`; takes no body.",
        tags=["admin"],
        responses=_RELOAD_RESPONSES,
    )
    async def reload(request: Request) -> Response[bytes]:
        if not _authorised(request, token):
            error = ServiceError(401, "unauthorized", "send Authorization: Bearer <SERVICE_ADMIN_TOKEN>")
            return Response(error.rest_body(), status_code=401, media_type=JSON, headers={"WWW-Authenticate": "Bearer"})
        outcomes = await reload_models(plane)
        failed = [o for o in outcomes if o.result == "failed"]
        if failed:
            fields = [(o.model, _refusal(o)) for o in failed]
            raise ServiceError(
                409, "reload_failed", f"{len(failed)} model(s) refused; the old versions keep serving", fields
            )
        return Response(msgspec.json.encode({"models": outcomes}), media_type=JSON)

    return [reload]


def _refusal(outcome: ReloadOutcome) -> str:
    """Why one model was refused; the version is left out when CURRENT could not even be read."""
    where = f"file {outcome.file}" if outcome.version is None else f"version {outcome.version}, file {outcome.file}"
    return f"{where}: {outcome.reason}; still serving {outcome.previous}"
