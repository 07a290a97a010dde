"""Drive the service's gRPC port with tritonclient.grpc; run as a child process by test_grpc.py.

A separate process because tritonclient's generated modules and the service's own register the same
`inference.*` message names in protobuf's default pool. Reads `{"target", "heart", "digits",
"digits_version"}` on stdin (rows as /predict takes them), writes what the client got back on stdout:
each inference twice, with tritonclient's defaults (raw_input_contents) and with typed `contents`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from service.contract import HEART_FEATURE_NAMES as HEART_FEATURES  # the editable install puts it on the path


def heart_arrays(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    arrays = {}
    for name in HEART_FEATURES:
        if name in rows[0]:
            kind = np.object_ if name == "thal" else np.float32
            arrays[name] = np.array([[row[name]] for row in rows], dtype=kind)
    return arrays


def raw_infer(client: grpcclient.InferenceServerClient, model: str, arrays: dict[str, np.ndarray], **kw: Any) -> Any:
    """tritonclient's defaults: raw_input_contents."""
    inputs = []
    for name, array in arrays.items():
        tensor = grpcclient.InferInput(name, list(array.shape), "BYTES" if array.dtype == np.object_ else "FP32")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return client.infer(model, inputs, **kw)


def typed_infer(stub: Any, model: str, arrays: dict[str, np.ndarray], **kw: Any) -> dict[str, Any]:
    """Typed contents (no raw bytes anywhere), built with the protocol's messages."""
    request = service_pb2.ModelInferRequest(model_name=model, **kw)
    for name, array in arrays.items():
        tensor = request.inputs.add(name=name, shape=list(array.shape))
        if array.dtype == np.object_:
            tensor.datatype = "BYTES"
            tensor.contents.bytes_contents.extend(str(v).encode() for v in array.reshape(-1))
        else:
            tensor.datatype = "FP32"
            tensor.contents.fp32_contents.extend(array.reshape(-1).tolist())
    answer = stub.ModelInfer(request)
    assert not answer.raw_output_contents, "typed in, typed out"
    found: dict[str, Any] = {"id": answer.id, "model_version": answer.model_version}
    for tensor in answer.outputs:
        contents = tensor.contents
        values = {
            "FP32": contents.fp32_contents,
            "FP64": contents.fp64_contents,
            "INT64": contents.int64_contents,
            "BYTES": [v.decode() for v in contents.bytes_contents],
        }[tensor.datatype]
        found[tensor.name] = list(values)
    return found


def refusal(call: Any) -> dict[str, str]:
    try:
        call()
    except InferenceServerException as error:
        return {"status": str(error.status()), "message": error.message()}
    except grpc.RpcError as error:
        return {"status": str(error.code()), "message": error.details()}
    return {"status": "OK", "message": ""}


def main() -> None:
    job = json.load(sys.stdin)
    client = grpcclient.InferenceServerClient(url=job["target"])
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(job["target"]))
    heart = heart_arrays(job["heart"])
    pixels = {"pixels": np.array([item["pixels"] for item in job["digits"]], dtype=np.float32)}
    result: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "heart_ready": client.is_model_ready("heart"),
        "server": client.get_server_metadata(as_json=True),
        "digits_metadata": client.get_model_metadata("digits", as_json=True),
    }
    answer = raw_infer(client, "heart", heart, request_id="g-1")
    result["heart_raw"] = {
        "id": answer.get_response().id,
        "probability": answer.as_numpy("probability").tolist(),
        "prediction": answer.as_numpy("prediction").tolist(),
        "label": [label.decode() for label in answer.as_numpy("label")],
    }
    result["heart_typed"] = typed_infer(stub, "heart", heart, id="g-2")
    result["heart_single_raw"] = (
        raw_infer(client, "heart", heart_arrays(job["heart"][:1])).as_numpy("probability").tolist()
    )
    strict = {"threshold": service_pb2.InferParameter(double_param=0.999)}
    result["heart_strict"] = typed_infer(stub, "heart", heart, parameters=strict)["prediction"]
    digits = raw_infer(client, "digits", pixels, model_version=job["digits_version"])
    result["digits_raw"] = {
        "probabilities": digits.as_numpy("probabilities").tolist(),
        "digit": digits.as_numpy("digit").tolist(),
    }
    result["digits_typed"] = typed_infer(stub, "digits", pixels)
    bad_shape = {"pixels": np.zeros((1, 63), dtype=np.float32)}
    out_of_range = heart_arrays([{**job["heart"][0], "age": 300}])
    no_sex = {k: v for k, v in heart.items() if k != "sex"}
    bad_datatype = service_pb2.ModelInferRequest(model_name="heart")
    for name, array in heart.items():
        tensor = bad_datatype.inputs.add(name=name, shape=list(array.shape), datatype="BYTES")
        tensor.contents.bytes_contents.extend(str(v).encode() for v in array.reshape(-1))
    result["refused"] = {
        "unknown model": refusal(lambda: raw_infer(client, "cats", pixels)),
        "bad shape": refusal(lambda: raw_infer(client, "digits", bad_shape)),
        "bad datatype": refusal(lambda: stub.ModelInfer(bad_datatype)),
        "missing input": refusal(lambda: raw_infer(client, "heart", no_sex)),
        "out of range": refusal(lambda: raw_infer(client, "heart", out_of_range)),
        "unknown version": refusal(lambda: client.get_model_metadata("heart", model_version="v0")),
    }
    client.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
