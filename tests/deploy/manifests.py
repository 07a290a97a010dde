"""Helpers for the deploy/ tests: paths, the real kustomize (pykustomize wraps its Go library), a Dockerfile reader."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
DOCKERFILE = DEPLOY / "Dockerfile"


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build directory`, parsed: one dict per object."""
    import pykustomize

    rendered = asyncio.run(pykustomize.build(str(directory)))
    return [doc for doc in yaml.safe_load_all(rendered.yaml) if doc]


def get_routes() -> set[str]:
    """The GET route paths of the service as `create_app` builds it (nothing is loaded until start-up)."""
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings())
    return {route.path for route in app.routes if "GET" in getattr(route, "methods", set())}


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The only object of `kind` (fails when there is none or several)."""
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@dataclass
class Stage:
    """One FROM ... stage of a Dockerfile: its base image, name and instructions (keyword, arguments)."""

    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """Split a Dockerfile into stages, joining `\\` continuations and dropping comments."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args.strip(), flags=re.IGNORECASE)
            assert match, f"unreadable FROM line: {line}"
            stages.append(Stage(image=match.group(1), name=match.group(2)))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


# --- metric names ----------------------------------------------------------------------------------------
# Sample names (as PromQL sees them) of the metrics the service exposes.
MODEL_METRICS = {
    "modelserve_predictions_total",
    "modelserve_predicted_probability_bucket",
    "modelserve_reference_probability_ratio",
    "modelserve_inference_seconds_bucket",
    "modelserve_batch_rows_bucket",
    "modelserve_validation_failures_total",
    "modelserve_missing_fields_total",
    "modelserve_input_bucket_total",
    "modelserve_input_reference_share",
    "modelserve_model_info",
    "modelserve_reloads_total",
    "modelserve_model_ready",
    "modelserve_ready",
}
_METRIC = re.compile(r"(?<![:\w])((?:litestar|modelserve)_\w+)\b(?!:)")
_RECORDED = re.compile(r"(?<![\w:])(\w*:\w+:\w+)")
_STRING = re.compile(r'"[^"]*"')


def litestar_metrics(prefix: str = "litestar") -> set[str]:
    """Litestar's Prometheus plugin metric names, read from its own source (histograms get their suffixes)."""
    from litestar.plugins.prometheus import middleware

    source = Path(middleware.__file__).read_text()
    names = {f"{prefix}_{suffix}" for suffix in re.findall(r'f"\{self\._config\.prefix\}_(\w+)"', source)}
    histograms = {name for name in names if name.endswith("_seconds")}
    return (names - histograms) | {f"{h}_{s}" for h in histograms for s in ("bucket", "count", "sum")}


def metrics_in(promql: str) -> set[str]:
    """Raw litestar_*/modelserve_* metric names a PromQL expression reads (recording-rule names excluded)."""
    return set(_METRIC.findall(_STRING.sub('""', promql)))


def recorded_in(promql: str) -> set[str]:
    """Recording-rule names (level:metric:operations) a PromQL expression reads."""
    return set(_RECORDED.findall(_STRING.sub('""', promql)))
