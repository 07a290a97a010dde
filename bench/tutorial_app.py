"""The baseline: the tutorial's own inference recipe, served by Litestar on the service's server software.

This is what a user would otherwise write around the training code's outputs: per request, build a
pandas DataFrame from the JSON patient, apply the fitted preprocessing objects from
`preprocess.joblib` (each ensemble member's `HeartPreprocessor.transform`: imputation, scaling and
one-hot encoding), run a torch forward of the network rebuilt from `weights.pt`, average the
members' logits and take the sigmoid. Same artifact, same probabilities as `model.onnx`.

Run it with `python -m bench.tutorial_app --artifacts-dir artifacts --port 8001 [--server uvicorn]`.
It imports torch and unpickles joblib files: it belongs to the benchmark, never to the service.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import torch
from litestar import Litestar, get, post
from litestar.params import JSONBody
from pydantic import BaseModel

from bench.payloads import current_version_dir
from service.contract import PREPROCESS_FILE, WEIGHTS_FILE
from training.models import HeartMLP, LogitEnsemble, TabularEncoder


class Patient(BaseModel):
    """The tutorial's request body: the canonical heart fields, `None` for a missing value."""

    age: float
    sex: int
    cp: int | None = None
    trestbps: float | None = None
    chol: float | None = None
    fbs: int | None = None
    restecg: int | None = None
    thalach: float | None = None
    exang: int | None = None
    oldpeak: float | None = None
    slope: int | None = None
    ca: float | None = None
    thal: str | None = None


@dataclass
class Recipe:
    """The fitted objects of one heart artifact, used the way the tutorial uses them."""

    preprocessors: list[Any]
    model: LogitEnsemble
    features: list[dict[str, Any]]
    threshold: float
    version: str

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """P(disease) for each row of a DataFrame of API-form patients."""
        columns = []
        for spec in self.features:
            values = frame[spec["name"]]
            if spec["kind"] == "category":  # API values → the codes the preprocessors were fitted on
                values = values.map(dict(zip(spec["categories"], spec["codes"], strict=True)))
            columns.append(values.to_numpy(dtype=np.float64, na_value=np.nan))
        raw = np.stack(columns, axis=1)
        with torch.no_grad():
            logits = [
                member.net(torch.from_numpy(preprocessor.transform(raw))).squeeze(-1)
                for preprocessor, member in zip(self.preprocessors, self.model.members, strict=True)
            ]
            return torch.sigmoid(torch.stack(logits).mean(dim=0)).numpy().astype(np.float64)

    def predict(self, patient: dict[str, Any]) -> float:
        """P(disease) of one patient, as the tutorial computes it: one-row DataFrame, transform, forward."""
        return float(self.predict_frame(pd.DataFrame([patient]))[0])


def load_recipe(artifacts_dir: Path) -> Recipe:
    """The current heart version's preprocessing objects and torch model."""
    version_dir = current_version_dir(artifacts_dir, "heart")
    bundle = joblib.load(version_dir / PREPROCESS_FILE)
    architecture = bundle["architecture"]
    preprocessors = bundle["preprocessors"]
    members = [
        HeartMLP(TabularEncoder.from_preprocessor(p), tuple(architecture["hidden"]), architecture["dropout"])
        for p in preprocessors
    ]
    model = LogitEnsemble(members)
    model.load_state_dict(torch.load(version_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    model.eval()
    return Recipe(
        preprocessors=preprocessors,
        model=model,
        features=bundle["features"],
        threshold=float(bundle["threshold"]),
        version=version_dir.name,
    )


def create_app(artifacts_dir: Path) -> Litestar:
    """The tutorial service: `POST /predict/heart` and the two health routes."""
    recipe = load_recipe(artifacts_dir)

    @post("/predict/heart", status_code=200, sync_to_thread=False)
    def predict_heart(data: JSONBody[Patient]) -> dict[str, Any]:
        probability = recipe.predict(data.model_dump())
        if not math.isfinite(probability):
            raise ValueError("non-finite probability")
        return {
            "probability": probability,
            "threshold": recipe.threshold,
            "prediction": int(probability >= recipe.threshold),
            "version": recipe.version,
        }

    @get("/health/live", sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", sync_to_thread=False)
    def ready() -> dict[str, str]:
        return {"status": "ready"}  # the model is loaded before the server starts listening

    return Litestar(route_handlers=[predict_heart, live, ready])


ARTIFACTS_ENV = "TUTORIAL_ARTIFACTS_DIR"


def app_from_env() -> Litestar:
    """Factory for granian, which imports the app by name in its worker process."""
    return create_app(Path(os.environ[ARTIFACTS_ENV]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian", help="as the service's")
    args = parser.parse_args(argv)
    if args.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        os.environ[ARTIFACTS_ENV] = str(args.artifacts_dir.resolve())
        Granian(
            "bench.tutorial_app:app_from_env",
            factory=True,
            address=args.host,
            port=args.port,
            interface=Interfaces.ASGI,
            workers=1,
            loop=Loops.uvloop,
            websockets=False,
            log_access=False,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        create_app(args.artifacts_dir), host=args.host, port=args.port, workers=1, access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
