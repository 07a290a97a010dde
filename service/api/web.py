"""The web page at `/` (service/web: plain HTML, CSS and JavaScript) and the model cards it shows.

The page talks only to this service's own API: no CDN, no other origin, so it works offline and behind
a strict firewall; its Content-Security-Policy says so to the browser (no inline script or style, no
other origin, no framing). `SERVICE_WEB=false` leaves every route here out (locked-down deployments).

A model card is the artifact's `report/README.md`, rendered here with markdown-it (raw HTML off, so a
card cannot inject markup) and its images pointed at `/models/<name>/files/report/<plot>`. Only files
that the served version's manifest lists under `report/` are served, each read once and checked against
its sha256 as read (service.artifact.read_listed_file); any other path is a 404. Nothing here reads a
request body, and the access log records route templates only (never what the page sends).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from markdown_it import MarkdownIt

from service.api.docs import JSON
from service.artifact import ArtifactError, read_listed_file
from service.contract import REPORT_DIR
from service.dataplane import DataPlane
from service.errors import ServiceError

CARD_FILE = f"{REPORT_DIR}/README.md"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",  # frame-ancestors' counterpart for old browsers
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # a new version of the page or of a model shows at once
}
MEDIA_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
_encode = msgspec.json.Encoder().encode


def static_files() -> dict[str, bytes]:
    """The page's files by name, read once from the installed package (nothing else is served)."""
    folder = resources.files("service") / "web"
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and PurePosixPath(entry.name).suffix in MEDIA_TYPES
    }


def _answer(body: bytes, name: str, status: int = 200) -> Response[bytes]:
    media_type = MEDIA_TYPES.get(PurePosixPath(name).suffix, "application/octet-stream")
    return Response(body, status_code=status, media_type=media_type, headers=SECURITY_HEADERS)


def not_found(what: str) -> ServiceError:
    return ServiceError(404, "not_found", f"no such file: {what[:200]}")


@lru_cache(maxsize=8)
def render_card(markdown: str, files_url: str, listed: frozenset[str]) -> str:
    """The card's HTML: raw HTML in the markdown escaped; an image kept only if its file is listed."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(markdown)
    for token in tokens:
        for child in token.children or ():
            if child.type != "image":
                continue
            source = f"{REPORT_DIR}/{child.attrGet('src')}"
            if source in listed:
                child.attrSet("src", f"{files_url}/{source}")
            else:  # not a file of this version: show its alt text, fetch nothing
                child.type, child.tag, child.content = "text", "", child.content or ""
    return parser.renderer.render(tokens, parser.options, {})


def web_routes(plane: DataPlane) -> list[HTTPRouteHandler]:
    """`/`, `/web/<file>`, `/models/<name>/card` and `/models/<name>/files/report/<file>`."""
    files = static_files()

    def served_model(name: str) -> Any:
        served = plane.served.get(name)
        if served is None:
            loaded = ", ".join(plane.served)
            raise ServiceError(404, "model_not_found", f"no model named {name[:64]!r}; loaded: {loaded}")
        return served.model

    def verified(model: Any, path: str) -> bytes:
        # Only the model card's own files: weights and pickles are listed too, but are nobody's business here.
        if not path.startswith(f"{REPORT_DIR}/") or path not in model.manifest.files:
            raise not_found(path)
        try:
            return read_listed_file(plane.settings.artifacts_dir, model.name, model.version, model.manifest, path)
        except ArtifactError:
            raise not_found(path) from None

    @get("/", include_in_schema=False, sync_to_thread=False)
    def page() -> Response[bytes]:
        return _answer(files["index.html"], "index.html")

    @get("/web/{file:str}", include_in_schema=False, sync_to_thread=False)
    def static(file: FromPath[str]) -> Response[bytes]:
        if file not in files:
            raise not_found(file)
        return _answer(files[file], file)

    @get("/models/{name:str}/card", include_in_schema=False, sync_to_thread=True)
    def card(name: FromPath[str]) -> Response[bytes]:
        model = served_model(name)
        listed = frozenset(path for path in model.manifest.files if path.startswith(f"{REPORT_DIR}/"))
        html = ""
        if CARD_FILE in listed:
            text = verified(model, CARD_FILE).decode("utf-8", errors="replace")
            html = render_card(text, f"/models/{name}/files", listed)
        body = {
            "name": model.name,
            "version": model.version,
            "html": html,
            "threshold": msgspec.to_builtins(model.manifest.threshold),
        }
        return Response(_encode(body), media_type=JSON, headers=SECURITY_HEADERS)

    @get("/models/{name:str}/files/{path:path}", include_in_schema=False, sync_to_thread=True)
    def model_file(name: FromPath[str], path: FromPath[str]) -> Response[bytes]:
        model = served_model(name)
        relative = path.lstrip("/")
        return _answer(verified(model, relative), relative)

    return [page, static, card, model_file]
