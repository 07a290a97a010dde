"""The Open Inference Protocol's gRPC service of a real `python -m service`, driven by tritonclient.grpc
(raw contents, its default) and by typed contents; refusals as gRPC codes with REST's messages; the
standard health service; the size limit; several workers on one port; the drain on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.service.processes import free_port, start, stop, total, wait_ready

# tritonclient (dev extra) is imported only in the child session: its generated `inference.*` messages and
# the service's (which bench.payloads and the app import in this process) cannot share protobuf's default pool.
SESSION = Path(__file__).with_name("grpc_session.py")
INFER = "/inference.GRPCInferenceService/ModelInfer"


def complete_rows(reference: dict[str, Any]) -> list[int]:
    return [i for i, row in enumerate(reference["inputs"]) if len(row) == 13 and None not in row.values()]


@pytest.fixture(scope="module")
def session(
    service: dict[str, str], heart_reference: dict[str, Any], digits_reference: dict[str, Any], digits_version: Path
) -> dict[str, Any]:
    complete = complete_rows(heart_reference)
    job = {
        "target": service["target"],
        "heart": [heart_reference["inputs"][i] for i in complete],
        "digits": digits_reference["inputs"][:20],
        "digits_version": digits_version.name,
    }
    done = subprocess.run(
        [sys.executable, str(SESSION)], input=json.dumps(job), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_health_and_metadata(session: dict[str, Any], digits_version: Path) -> None:
    assert session["live"] is True
    assert session["ready"] is True
    assert session["heart_ready"] is True
    assert session["server"]["extensions"] == ["binary_tensor_data"]
    metadata = session["digits_metadata"]
    assert metadata["versions"] == [digits_version.name]
    assert metadata["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": ["-1", "64"]}]


@pytest.mark.parametrize("form", ["raw", "typed"])
def test_heart_batch_matches_the_reference(session: dict[str, Any], heart_reference: dict[str, Any], form: str) -> None:
    expected = [heart_reference["probabilities"][i] for i in complete_rows(heart_reference)]
    heart = session[f"heart_{form}"]
    assert heart["id"] == {"raw": "g-1", "typed": "g-2"}[form]
    assert heart["probability"] == pytest.approx(expected, abs=1e-5)
    assert heart["label"] == [["no disease", "disease"][p] for p in heart["prediction"]]
    assert 0 < sum(heart["prediction"]) < len(expected)
    assert session["heart_single_raw"] == pytest.approx(expected[:1], abs=1e-5)
    assert session["heart_strict"] == [int(p >= 0.999) for p in heart["probability"]]


@pytest.mark.parametrize("form", ["raw", "typed"])
def test_digits_batch_matches_the_reference(
    session: dict[str, Any], digits_reference: dict[str, Any], form: str
) -> None:
    expected = digits_reference["probabilities"][:20]
    digits = session[f"digits_{form}"]
    flat = digits["probabilities"]
    rows = flat if form == "raw" else [flat[i * 10 : i * 10 + 10] for i in range(20)]
    for got, want in zip(rows, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    assert digits["digit"] == [max(range(10), key=row.__getitem__) for row in expected]


REFUSALS = {
    "unknown model": ("NOT_FOUND", ["'cats'", "heart, digits"]),
    "unknown version": ("NOT_FOUND", ["'v0'"]),
    "bad shape": ("INVALID_ARGUMENT", ["'pixels'", "[1, 63]"]),
    "bad datatype": ("INVALID_ARGUMENT", ["'age'", "BYTES"]),
    "missing input": ("INVALID_ARGUMENT", ["missing input", "'sex'"]),
    "out of range": ("INVALID_ARGUMENT", ["'age'", "300"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_grpc_codes_with_the_rest_messages(session: dict[str, Any], case: str) -> None:
    code, mentions = REFUSALS[case]
    refused = session["refused"][case]
    assert refused["status"] == f"StatusCode.{code}", refused
    for mention in mentions:
        assert mention in refused["message"], (mention, refused)


def test_calls_and_refusals_are_counted(session: dict[str, Any], service: dict[str, str]) -> None:
    exposition = httpx.get(f"{service['url']}/metrics", timeout=10).text
    assert total(exposition, "modelserve_grpc_requests_total", method="ModelInfer", code="OK") >= 6
    assert total(exposition, "modelserve_grpc_requests_total", method="ModelInfer", code="INVALID_ARGUMENT") >= 4
    # every call timed, answered or refused (+Inf: the count of observations)
    timed = total(exposition, "modelserve_grpc_request_duration_seconds_bucket", method="ModelInfer", le="+Inf")
    assert timed >= 10
    assert total(exposition, "modelserve_validation_failures_total", model="heart") >= 3


def test_the_standard_health_service(service: dict[str, str]) -> None:
    with grpc.insecure_channel(service["target"]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "inference.GRPCInferenceService", "heart"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as refused:
            health.Check(health_pb2.HealthCheckRequest(service="cats"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_message_over_the_size_limit_is_resource_exhausted(service: dict[str, str]) -> None:
    with grpc.insecure_channel(service["target"], options=[("grpc.max_send_message_length", -1)]) as channel:
        call = channel.unary_unary(INFER)  # bytes in, bytes out: no messages needed to be refused by size
        with pytest.raises(grpc.RpcError) as refused:
            call(b"\x0a" + b"\x00" * (5 * 1024 * 1024), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_message_that_is_not_protobuf_is_invalid_argument(service: dict[str, str]) -> None:
    with grpc.insecure_channel(service["target"]) as channel:
        call = channel.unary_unary(INFER)
        with pytest.raises(grpc.RpcError) as refused:
            call(b"\xff\xff\xff", timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ModelInferRequest" in (refused.value.details() or "")
        with pytest.raises(grpc.RpcError) as missing:
            call(b"\x0a\x05heart", timeout=10)  # model_name "heart", no inputs
        assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "missing input 'age', 'sex'" in (missing.value.details() or "")


def test_two_workers_share_the_port_and_drain_on_sigterm(small_artifacts: Path) -> None:
    port = free_port()
    process, url = start(small_artifacts, SERVICE_ACCESS_LOG="false", SERVICE_GRPC_PORT=str(port), SERVICE_WORKERS="2")
    try:
        wait_ready(process, url)
        for _ in range(12):  # a new connection each time: the kernel spreads them over the workers
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        stop(process)
