"""Ask the service's gRPC port for explanations with tritonclient.grpc; run as a child process by
test_grpc_explain.py (tritonclient's generated modules and the service's share protobuf's default pool).

Reads `{"target", "heart", "pixels"}` on stdin, writes what the client got back on stdout.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.grpc.grpc_session import heart_arrays, raw_infer, refusal, typed_infer


def main() -> None:
    job = json.load(sys.stdin)
    client = grpcclient.InferenceServerClient(url=job["target"])
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(job["target"]))
    heart = heart_arrays(job["heart"])
    explain = {"explain": True}
    answer = raw_infer(client, "heart", heart, parameters=explain)
    single = raw_infer(client, "heart", heart_arrays(job["heart"][:1]), parameters=explain)
    typed = typed_infer(stub, "heart", heart, parameters={"explain": service_pb2.InferParameter(bool_param=True)})
    pixels = {"pixels": np.array(job["pixels"], dtype=np.float32)}
    digits = raw_infer(client, "digits", pixels, parameters=explain)
    only = [grpcclient.InferRequestedOutput("contributions")]
    result: dict[str, Any] = {
        "heart": {
            "probability": answer.as_numpy("probability").tolist(),
            "contributions": answer.as_numpy("contributions").tolist(),
            "datatype": answer.get_output("contributions").datatype,
        },
        "single": single.as_numpy("contributions").tolist(),
        "typed_outputs": sorted(key for key in typed if key not in ("id", "model_version")),
        "digits": {"shape": list(digits.as_numpy("contributions").shape), "digit": digits.as_numpy("digit").tolist()},
        "only_contributions": raw_infer(client, "heart", heart, outputs=only, parameters=explain).get_response(
            as_json=True
        )["outputs"],
        "plain_outputs": [out.name for out in raw_infer(client, "heart", heart).get_response().outputs],
        "refused": {
            "explain not a bool": refusal(lambda: raw_infer(client, "heart", heart, parameters={"explain": "yes"})),
            "contributions without explain": refusal(lambda: raw_infer(client, "heart", heart, outputs=only)),
        },
    }
    client.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
