"""An MLServer runtime for the heart artifact's model.onnx: what an MLServer user would write to serve it.

Loaded by MLServer inside its own virtualenv (bench.mlserver makes the model-settings.json), never by the
service or the tests. It does the least a runtime can: the V2 request's columns decoded with MLServer's
own codecs, `thal` mapped to its codes, one onnxruntime call, P(disease) and the label at the artifact's
threshold back. No range checks, no missing-value handling beyond what the graph does: the comparison
favours MLServer, if anything.

The same predict serves REST JSON and gRPC: for a gRPC ModelInfer with `raw_input_contents` (FP32 columns,
BYTES `thal`, as tritonclient.grpc sends), MLServer's converter unpacks each raw tensor into the input's
`data` before predict runs (numbers as floats, BYTES as `bytes`, which StringCodec decodes to text), and
answers raw because the request was raw. bench.mlserver checks both answers against the service's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse


class HeartOnnx(MLModel):
    async def load(self) -> bool:
        version_dir = Path(self.settings.parameters.uri)
        manifest = json.loads((version_dir / "manifest.json").read_text())
        self.features = manifest["inputs"]["features"]
        self.columns = {spec["name"]: index for index, spec in enumerate(self.features)}
        self.codes = {
            spec["name"]: dict(zip(map(str, spec["categories"]), spec["codes"], strict=True))
            for spec in self.features
            if spec["kind"] == "category"
        }
        self.threshold = float(manifest["threshold"]["value"])
        self.labels = np.array(manifest["labels"], dtype=object)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        graph = str(version_dir / "model.onnx")
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = payload.inputs[0].shape[0]
        matrix = np.empty((rows, len(self.features)), dtype=np.float32)
        for request_input in payload.inputs:
            column = self.columns[request_input.name]
            if request_input.datatype == "BYTES":
                table = self.codes[request_input.name]
                matrix[:, column] = [table.get(text, np.nan) for text in StringCodec.decode_input(request_input)]
            else:
                matrix[:, column] = NumpyCodec.decode_input(request_input).reshape(-1)
        probability = self.session.run(None, {self.input_name: matrix})[0].reshape(-1)
        labels = self.labels[(probability >= self.threshold).astype(int)].tolist()
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output("probability", probability.reshape(-1, 1)),
                StringCodec.encode_output("label", labels),
            ],
        )
