"""Drive the service with tritonclient's HTTP client; run as a child process by test_tritonclient.py.

A separate process because tritonclient.http brings gevent, whose hub and (if anything ever patched)
monkeypatching must not leak into the test process. Reads `{"url", "binary", "heart": [...], "heart_partial": [...],
"digits": [...]}` on stdin (rows as /predict takes them), writes what the client got back as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.http as httpclient

from service.contract import HEART_FEATURE_NAMES as HEART_FEATURES  # the editable install puts it on the path

BINARY = False  # tritonclient's default is True: raw tensor bytes after the JSON (set from the job)


def heart_inputs(rows: list[dict[str, Any]]) -> list[httpclient.InferInput]:
    """One InferInput per feature the rows have; a feature none of them has is left out (missing)."""
    inputs = []
    for name in HEART_FEATURES:
        if name not in rows[0]:
            continue
        if name == "thal":
            array = np.array([[row[name]] for row in rows], dtype=np.object_)
            tensor = httpclient.InferInput(name, list(array.shape), "BYTES")
        else:
            array = np.array([[row[name]] for row in rows], dtype=np.float32)
            tensor = httpclient.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=BINARY)
        inputs.append(tensor)
    return inputs


def wanted(*names: str) -> list[httpclient.InferRequestedOutput]:
    return [httpclient.InferRequestedOutput(name, binary_data=BINARY) for name in names]


def main() -> None:
    global BINARY  # noqa: PLW0603 (one setting for the whole session)
    job = json.load(sys.stdin)
    BINARY = job["binary"]
    client = httpclient.InferenceServerClient(url=job["url"].removeprefix("http://"))
    heart_version = client.get_model_metadata("heart")["versions"][0]
    result: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "heart_ready": client.is_model_ready("heart"),
        "heart_version_ready": client.is_model_ready("heart", model_version=heart_version),
        "cats_ready": client.is_model_ready("cats"),
        "heart_metadata": client.get_model_metadata("heart"),
        "digits_metadata": client.get_model_metadata("digits", model_version=job["digits_version"]),
    }
    answer = client.infer(
        "heart", heart_inputs(job["heart"]), outputs=wanted("probability", "prediction", "label"), request_id="h-1"
    )
    result["heart"] = {
        "id": answer.get_response()["id"],
        "probability": answer.as_numpy("probability").tolist(),
        "prediction": answer.as_numpy("prediction").tolist(),
        "label": [label.decode() if isinstance(label, bytes) else label for label in answer.as_numpy("label")],
    }
    partial = client.infer("heart", heart_inputs(job["heart_partial"]), outputs=wanted("probability"))
    result["heart_partial"] = partial.as_numpy("probability").tolist()
    threshold = client.infer(
        "heart", heart_inputs(job["heart"]), outputs=wanted("prediction"), parameters={"threshold": 0.999}
    )
    result["heart_strict"] = threshold.as_numpy("prediction").tolist()
    pixels = np.array([item["pixels"] for item in job["digits"]], dtype=np.float32)
    tensor = httpclient.InferInput("pixels", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels, binary_data=BINARY)
    digits = client.infer("digits", [tensor], model_version=job["digits_version"])  # all outputs, by default
    result["digits"] = {
        "probabilities": digits.as_numpy("probabilities").tolist(),
        "digit": digits.as_numpy("digit").tolist(),
        "model_version": digits.get_response()["model_version"],
    }
    short = httpclient.InferInput("pixels", [1, 63], "FP32")
    short.set_data_from_numpy(np.zeros((1, 63), dtype=np.float32), binary_data=BINARY)
    try:
        client.infer("digits", [short])
    except Exception as error:  # tritonclient raises InferenceServerException with the server's message
        result["refused"] = {"status": str(error.status()), "message": error.message()}
    client.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
