"""The seams hold: a third model is served by writing one Model subclass and nothing else in the service.

The model is a tiny logistic classifier over two features, built here as an ONNX graph with its own
contract entry (its FeatureSpecs) and a complete, checksummed artifact. It is served beside heart and
digits through every generic surface: POST /predict/<route> and its batch route, the Open Inference
Protocol's metadata and infer, GET /models and /metrics.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import onnx
import pytest
from litestar.testing import TestClient
from msgspec import Struct
from onnx import TensorProto, helper, numpy_helper

from service.app import create_app
from service.contract import (
    CURRENT_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    PREPROCESS_FILE,
    REFERENCE_FILE,
    SCHEMA_VERSION,
    WEIGHTS_FILE,
    FeatureSpec,
    FileEntry,
    Manifest,
    ModelInputs,
    ModelOutputs,
    TensorSpec,
    Threshold,
    file_entry,
)
from service.models.base import Docs, TensorOutput
from service.models.tabular import TabularModel, request_struct
from service.settings import Settings
from tests.service.processes import total

# ---- the contract entry: two features, one of them may be missing ------------------------------
TINY_FEATURES = (
    FeatureSpec(name="length", kind="number", description="petal length", minimum=0, maximum=10, nullable=False),
    FeatureSpec(name="width", kind="number", description="petal width", minimum=0, maximum=5, unit="cm"),
)
TINY_LABELS = ("small", "large")
TINY_EXAMPLE = {"length": 4.0, "width": 1.5}
WEIGHTS, BIAS = np.array([0.8, 1.5], dtype=np.float32), np.float32(-4.0)
MISSING_FILL = np.float32(1.0)  # a missing width counts as 1.0 inside the graph


def tiny_probability(matrix: np.ndarray) -> np.ndarray:
    """What the graph computes, in numpy: the reference the artifact records."""
    filled = np.where(np.isnan(matrix), MISSING_FILL, matrix)
    return 1 / (1 + np.exp(-(filled @ WEIGHTS + BIAS)))


def tiny_graph() -> bytes:
    """x [N, 2] → p [N] = sigmoid(where(isnan(x), fill, x) · w + b)."""
    nodes = [
        helper.make_node("IsNaN", ["x"], ["nan"]),
        helper.make_node("Where", ["nan", "fill", "x"], ["filled"]),
        helper.make_node("MatMul", ["filled", "w"], ["z0"]),
        helper.make_node("Add", ["z0", "b"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array(MISSING_FILL, dtype=np.float32), "fill"),
        numpy_helper.from_array(WEIGHTS, "w"),
        numpy_helper.from_array(np.array(BIAS, dtype=np.float32), "b"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ---- the one Model subclass ---------------------------------------------------------------------
class TinyPrediction(Struct):
    probability: float
    label: Literal[TINY_LABELS]  # type: ignore[valid-type]
    missing: list[str]
    version: str


class TinyBatch(Struct):
    predictions: list[TinyPrediction]


class TinyModel(TabularModel):
    name = "tiny"
    route = "tiny"
    labels = TINY_LABELS
    features = TINY_FEATURES
    example = TINY_EXAMPLE
    onnx_input = "x"
    onnx_output = "p"
    output_shape = (-1,)
    request = request_struct("TinyInput", TINY_FEATURES, TINY_EXAMPLE)
    response = TinyPrediction
    batch_response = TinyBatch
    tensor_outputs = (TensorOutput("probability", "FP32"), TensorOutput("label", "BYTES"))
    docs = Docs(
        summary="Tell a small flower from a large one",
        description="`length` is required; `width` may be missing.",
        batch_description="One invalid row rejects the request.",
        requests={"a flower": TINY_EXAMPLE},
        response={"probability": 0.4, "label": "small", "missing": [], "version": "v1"},
        batch_response={"predictions": [{"probability": 0.4, "label": "small", "missing": [], "version": "v1"}]},
        tensor_requests={"a flower": {"inputs": [{"name": "length", "shape": [1], "datatype": "FP32", "data": [4.0]}]}},
    )

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        return outputs

    def decide(self, outputs: np.ndarray, threshold: float) -> np.ndarray:
        return (outputs >= threshold).astype(np.int64)

    def decide_one(self, output: Any, threshold: float) -> int:
        return int(output >= threshold)

    def _prediction(self, probability: float, decision: int, missing: list[str]) -> TinyPrediction:
        return TinyPrediction(probability, TINY_LABELS[decision], missing, self.version)

    def answer(self, output: Any, decision: int, row: Any, threshold: float) -> TinyPrediction:
        missing = [name for name, value in zip(self.counted_missing, row, strict=True) if value is None]
        return self._prediction(float(output), decision, missing)

    def answer_batch(self, outputs: np.ndarray, decisions: np.ndarray, matrix: np.ndarray, threshold: float) -> Any:
        rows = zip(outputs.tolist(), decisions.tolist(), self.missing_names(matrix), strict=True)
        return TinyBatch([self._prediction(*row) for row in rows])

    @staticmethod
    def reference_outputs(output: Any) -> list[float]:
        return [float(output)]

    def output_tensors(
        self, outputs: np.ndarray, decisions: np.ndarray
    ) -> dict[str, Callable[[], tuple[list[int], list[Any]]]]:
        shape = [len(decisions)]
        return {
            "probability": lambda: (shape, outputs.tolist()),
            "label": lambda: (shape, [TINY_LABELS[d] for d in decisions.tolist()]),
        }


# ---- its artifact ---------------------------------------------------------------------------------
def write_tiny_artifact(artifacts: Path, version: str = "20261128T000000Z-tiny0001") -> str:
    version_dir = artifacts / "tiny" / version
    version_dir.mkdir(parents=True)
    inputs = [TINY_EXAMPLE, {"length": 9.5, "width": 4.0}, {"length": 1.0}, {"length": 6.0, "width": None}]
    matrix = np.array([[row["length"], row.get("width")] for row in inputs], dtype=np.float32)
    (version_dir / ONNX_FILE).write_bytes(tiny_graph())
    (version_dir / WEIGHTS_FILE).write_bytes(WEIGHTS.tobytes() + BIAS.tobytes())
    (version_dir / PREPROCESS_FILE).write_bytes(b"no preprocessing: the graph fills missing widths itself")
    reference = {"inputs": inputs, "probabilities": tiny_probability(matrix).tolist()}
    (version_dir / REFERENCE_FILE).write_text(json.dumps(reference))
    files = {p.name: msgspec.convert(file_entry(p), FileEntry) for p in sorted(version_dir.iterdir())}
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        name="tiny",
        version=version,
        created_at="2026-11-28T00:00:00Z",
        git_commit=None,
        seed=0,
        data={"source": "made up in the test", "sha256": "0" * 64},
        config={},
        libraries={"onnx": onnx.__version__},
        inputs=ModelInputs(
            onnx=TensorSpec(name="x", dtype="float32", shape=[-1, 2]),
            features=[spec.to_manifest() for spec in TINY_FEATURES],
        ),
        outputs=ModelOutputs(onnx=TensorSpec(name="p", dtype="float32", shape=[-1])),
        labels=list(TINY_LABELS),
        threshold=Threshold(value=0.5, rule="even odds"),
        metrics={"test": {"accuracy": 1.0}},
        files=files,
        task="binary",
    )
    (version_dir / MANIFEST_FILE).write_bytes(msgspec.json.encode(manifest))
    (artifacts / "tiny" / CURRENT_FILE).write_text(version + "\n")
    return version


@pytest.fixture(scope="module")
def three_models(small_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    artifacts = tmp_path_factory.mktemp("three") / "artifacts"
    shutil.copytree(small_artifacts, artifacts)
    write_tiny_artifact(artifacts)
    settings = Settings(artifacts_dir=artifacts, models=("heart", "digits", "tiny"), access_log=False)
    with TestClient(app=create_app(settings)) as client:
        yield client


def test_predict_and_batch_routes(three_models: TestClient) -> None:
    one = three_models.post("/predict/tiny", json={"length": 9.5, "width": 4.0})
    assert one.status_code == 200, one.text
    expected = float(tiny_probability(np.array([[9.5, 4.0]], dtype=np.float32))[0])
    assert one.json()["probability"] == pytest.approx(expected, abs=1e-6)
    assert one.json()["label"] == "large"
    batch = three_models.post("/predict/tiny/batch", json={"instances": [TINY_EXAMPLE, {"length": 1.0}]})
    assert batch.status_code == 200, batch.text
    rows = batch.json()["predictions"]
    assert [row["missing"] for row in rows] == [[], ["width"]]
    refused = three_models.post("/predict/tiny", json={"length": 11})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "length"
    assert three_models.post("/predict/heart", json={"age": 50, "sex": 1}).status_code == 200  # the others too


def test_open_inference_protocol(three_models: TestClient) -> None:
    metadata = three_models.get("/v2/models/tiny").json()
    assert [t["name"] for t in metadata["inputs"]] == ["length", "width"]
    assert [t["name"] for t in metadata["outputs"]] == ["probability", "label"]
    body = {"inputs": [{"name": "length", "shape": [2, 1], "datatype": "FP32", "data": [9.5, 1.0]}]}
    answer = three_models.post("/v2/models/tiny/infer", json=body)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert outputs["label"] == ["large", "small"]
    expected = tiny_probability(np.array([[9.5, np.nan], [1.0, np.nan]], dtype=np.float32))
    assert outputs["probability"] == pytest.approx(expected.tolist(), abs=1e-6)
    out_of_range = {"inputs": [{"name": "length", "shape": [1], "datatype": "FP32", "data": [-1.0]}]}
    refused = three_models.post("/v2/models/tiny/infer", json=out_of_range)
    assert refused.status_code == 400 and "length" in refused.json()["error"]


def test_models_and_metrics(three_models: TestClient) -> None:
    listed = [model["name"] for model in three_models.get("/models").json()["models"]]
    assert listed == ["heart", "digits", "tiny"]
    info = three_models.get("/models/tiny").json()
    assert info["threshold"] == 0.5 and info["labels"] == list(TINY_LABELS)
    three_models.post("/predict/tiny", json=TINY_EXAMPLE)
    exposition = three_models.get("/metrics").text
    assert total(exposition, "modelserve_predictions_total", model="tiny") >= 1
    assert total(exposition, "modelserve_model_info", model="tiny") == 1
    assert total(exposition, "litestar_requests_total", path="/predict/tiny") >= 1


def test_the_openapi_document_describes_the_new_routes(three_models: TestClient) -> None:
    paths = three_models.get("/schema/openapi.json").json()["paths"]
    assert {"/predict/tiny", "/predict/tiny/batch"} <= set(paths)
