"""gRPC ModelInfer's request parameter `explain` (bool_param): the `contributions` output, the same values as
REST gives for the same patients, through tritonclient.grpc against a real `python -m service`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.contract import HEART_FEATURE_NAMES
from tests.grpc.test_grpc import complete_rows

# tritonclient (dev extra) is imported only in the child session: its generated `inference.*` messages and
# the service's (which bench.payloads and the app import in this process) cannot share protobuf's default pool.
ROOT = Path(__file__).resolve().parents[2]
PATIENTS = 5
METADATA_PROPERTIES = """
import json, sys
import grpc
from service.api.grpc import inference_pb2 as pb, inference_pb2_grpc as pb_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelMetadata(pb.ModelMetadataRequest(name="heart"), timeout=10)
print(json.dumps(dict(answer.properties)))
"""


@pytest.fixture(scope="module")
def patients(heart_reference: dict[str, Any]) -> list[dict[str, Any]]:
    return [heart_reference["inputs"][i] for i in complete_rows(heart_reference)[:PATIENTS]]


@pytest.fixture(scope="module")
def session(
    service: dict[str, str], patients: list[dict[str, Any]], digits_reference: dict[str, Any]
) -> dict[str, Any]:
    job = {
        "target": service["target"],
        "heart": patients,
        "pixels": [item["pixels"] for item in digits_reference["inputs"][:2]],
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.grpc.grpc_explain_session"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_explain_adds_contributions_equal_to_the_rest_answer(
    session: dict[str, Any], service: dict[str, str], patients: list[dict[str, Any]]
) -> None:
    heart = session["heart"]
    assert heart["datatype"] == "FP64"
    contributions = heart["contributions"]
    assert len(contributions) == PATIENTS and all(len(row) == len(HEART_FEATURE_NAMES) for row in contributions)
    for index, patient in enumerate(patients):
        rest = httpx.post(f"{service['url']}/predict/heart?explain=true", json=patient, timeout=30).json()
        expected = [rest["explanation"]["contributions"][name] for name in HEART_FEATURE_NAMES]
        assert contributions[index] == pytest.approx(expected, abs=1e-6)
        assert sum(contributions[index]) + rest["explanation"]["base"] == pytest.approx(
            heart["probability"][index], abs=1e-5
        )
    assert session["single"][0] == pytest.approx(contributions[0], abs=1e-6)


def test_explain_in_typed_contents_and_for_digits(session: dict[str, Any]) -> None:
    assert session["typed_outputs"] == ["contributions", "label", "prediction", "probability"]
    assert session["digits"]["shape"] == [2, 8, 8]
    assert [out["name"] for out in session["only_contributions"]] == ["contributions"]
    assert "contributions" not in session["plain_outputs"]


def test_explain_refusals_name_the_parameter(session: dict[str, Any]) -> None:
    refused = session["refused"]
    assert refused["explain not a bool"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "explain" in refused["explain not a bool"]["message"]
    assert refused["contributions without explain"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "contributions" in refused["contributions without explain"]["message"]


def test_model_metadata_properties_name_the_explain_parameter(service: dict[str, str]) -> None:
    """The Open Inference Protocol's optional `properties` (field 6, absent from tritonclient's proto): read with
    the service's own messages, in a child process (they and tritonclient's cannot share one), as REST's."""
    done = subprocess.run(
        [sys.executable, "-c", METADATA_PROPERTIES, service["target"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    properties = json.loads(done.stdout)
    assert "'contributions'" in properties["explain"] and "[-1, 13]" in properties["explain"]
    assert properties == httpx.get(f"{service['url']}/v2/models/heart", timeout=10).json()["properties"]
