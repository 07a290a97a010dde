"""bench.mlserver without MLServer (CI does not install it): its MLServer configuration (one process, the current
heart version, the runtime beside it), the same bytes to both sides with gRPC at each side's own port, and the
answer check before timing: probabilities read from JSON and from raw or typed gRPC answers, compared across
sides, against a real `python -m service` with gRPC on."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import answers
from bench.ab import ROOT
from bench.h2load import find_h2load, run_h2load
from bench.mlserver import (
    BOTH,
    RUNTIME,
    SERVICE_ONLY,
    answered_in_full,
    check_answers,
    mlserver_config,
    side_scenarios,
    start_service,
    table,
)
from bench.payloads import Payloads, build_payloads, complete, grpc_heart, reference_inputs, repeated_rows
from bench.processes import stop
from bench.scenarios import GRPC_INFER, Scenario, service_scenarios
from service.api.grpc import inference_pb2 as pb


def test_config_serves_the_given_version_in_one_process(tmp_path: Path) -> None:
    version_dir = tmp_path / "artifacts" / "heart" / "20260101T000000Z-abc"
    version_dir.mkdir(parents=True)
    config = tmp_path / "mlserver"
    config.mkdir()
    returned = mlserver_config(config, version_dir, 18123)
    settings = json.loads((config / "settings.json").read_text())
    assert returned == settings  # bench.mlserver aims its gRPC scenarios at the returned grpc_port
    assert settings["http_port"] == 18123
    assert settings["parallel_workers"] == 0  # MLServer's default of 1 dies at start-up with uvloop >= 0.22
    assert len({settings["http_port"], settings["grpc_port"], settings["metrics_port"]}) == 3
    model = json.loads((config / "heart" / "model-settings.json").read_text())
    assert model["parameters"]["uri"] == str(version_dir.resolve())
    module, _, cls = model["implementation"].rpartition(".")
    assert (config / "heart" / f"{module}.py").read_text() == RUNTIME.read_text()
    assert f"class {cls}(MLModel)" in RUNTIME.read_text()


def test_compared_scenarios_exist_in_bench(tmp_path: Path) -> None:
    """The scenario names bench.mlserver picks are bench's own (a renamed scenario must not vanish silently)."""
    payloads = Payloads(
        heart_one=b"{}", digit_one=b"{}", heart_batch=b"{}", digit_batch=b"{}",
        heart_version="v", digits_version="v", batch_rows=1000,
        v2_heart_one=b"{}", v2_heart_batch=b"{}", v2_heart_one_binary=(b"{}", 2), v2_heart_batch_binary=(b"{}", 2),
    )  # fmt: skip
    names = {scenario.name for scenario in service_scenarios(payloads, grpc_port=8001)}
    assert set(BOTH + SERVICE_ONLY) <= names


def _scenarios(payloads: Payloads, grpc_port: int) -> list[Scenario]:
    return [s for s in service_scenarios(payloads, grpc_port) if s.name in BOTH + SERVICE_ONLY]


def test_mlserver_gets_the_same_bytes_at_its_own_grpc_port(small_artifacts: Path) -> None:
    scenarios = _scenarios(build_payloads(small_artifacts, batch_rows=5), 7001)
    per_side = side_scenarios(scenarios, {"mlserver": 7002, "modelserve": 7001})
    assert [s.name for s in per_side["mlserver"]] == [s.name for s in scenarios if s.name in BOTH]
    assert {"grpc_heart", "grpc_heart_batch"} <= {s.name for s in per_side["mlserver"]}
    ours = {s.name: s for s in per_side["modelserve"]}
    for theirs in per_side["mlserver"]:
        assert theirs.body == ours[theirs.name].body  # the same pre-encoded bytes to both
        assert theirs.grpc_port == (7002 if theirs.name.startswith("grpc_") else None)
        assert ours[theirs.name].grpc_port == (7001 if theirs.name.startswith("grpc_") else None)


def _response(values: np.ndarray, raw: bool) -> bytes:
    """A ModelInferResponse as MLServer answers: raw outputs for a raw request, typed contents otherwise."""
    answer = pb.ModelInferResponse(model_name="heart")
    label = answer.outputs.add(name="label", datatype="BYTES", shape=[len(values)])
    output = answer.outputs.add(name="probability", datatype="FP32", shape=[len(values), 1])
    words = [b"disease" if v >= 0.5 else b"no disease" for v in values]
    if raw:
        answer.raw_output_contents.append(b"".join(struct.pack("<I", len(w)) + w for w in words))
        answer.raw_output_contents.append(values.astype("<f4").tobytes())
    else:
        label.contents.bytes_contents.extend(words)
        output.contents.fp32_contents.extend(values.tolist())
    return answer.SerializeToString()


def test_probabilities_are_read_from_raw_and_typed_grpc_answers_and_json() -> None:
    values = np.array([0.1, 0.75, 0.5], dtype=np.float32)
    for raw in (True, False):
        assert np.array_equal(answers.grpc_probabilities(_response(values, raw)), values.astype(np.float64))
    body = json.dumps(
        {"outputs": [{"name": "probability", "datatype": "FP64", "shape": [3, 1], "data": [0.1, 0.75, 0.5]}]}
    )
    assert np.allclose(answers.json_probabilities(body.encode()), values, atol=1e-7)
    with pytest.raises(answers.AnswerError, match="no output 'probability'"):
        answers.json_probabilities(b'{"error": {"code": "invalid"}}')
    with pytest.raises(answers.AnswerError, match="no output 'probability'"):
        answers.grpc_probabilities(pb.ModelInferResponse(model_name="heart").SerializeToString())


def test_answers_that_differ_or_miss_rows_are_refused() -> None:
    good = np.array([0.2, 0.9])
    answers.same_answers({"a": good, "b": good + 1e-7}, 2)
    with pytest.raises(answers.AnswerError, match="differ by up to"):
        answers.same_answers({"a": good, "b": good[::-1]}, 2)
    with pytest.raises(answers.AnswerError, match="expected 2 probabilities"):
        answers.same_answers({"a": good, "b": good[:1]}, 2)
    with pytest.raises(answers.AnswerError, match="in \\[0, 1\\]"):
        answers.same_answers({"a": good * 2}, 2)


def test_a_real_service_answers_json_and_grpc_and_a_different_answer_is_caught(
    small_artifacts: Path, heart_version: Path, tmp_path: Path
) -> None:
    """start_service serves gRPC; check_answers reads each scenario's answer from it over real sockets, takes
    two sides answering the same bytes alike, and stops on a side whose gRPC answer differs."""
    payloads = build_payloads(small_artifacts, batch_rows=7)
    server, grpc_port = start_service(ROOT, small_artifacts, tmp_path)
    try:
        scenarios = _scenarios(payloads, grpc_port)
        assert {s.name for s in scenarios} == set(BOTH + SERVICE_ONLY)
        check_answers({"a": server, "b": server}, {"a": scenarios, "b": scenarios})
        # the same rows in the opposite order: answered, 7 rows, but not the same probabilities row by row
        other = grpc_heart(repeated_rows(complete(reference_inputs(heart_version)), 7)[::-1])
        wrong = [replace(s, body=other) if s.name == "grpc_heart_batch" else s for s in scenarios]
        with pytest.raises(SystemExit, match="grpc_heart_batch: b and a differ"):
            check_answers({"a": server, "b": server}, {"a": scenarios, "b": wrong})
        _h2load_errors_are_caught(payloads.grpc_heart_batch, grpc_port, tmp_path)
    finally:
        stop(server)


def _h2load_errors_are_caught(frame: bytes, grpc_port: int, tmp_path: Path) -> None:
    """h2load counts calls answered with a gRPC error (an unknown model) as succeeded; answered_in_full does
    not, and takes the real answers."""
    request = pb.ModelInferRequest.FromString(frame[5:])
    request.model_name = "no-such-model"
    message = request.SerializeToString()
    unknown = b"\x00" + struct.pack(">I", len(message)) + message
    url = f"http://127.0.0.1:{grpc_port}{GRPC_INFER}"
    answer_bytes = len(answers.grpc_answer(grpc_port, GRPC_INFER, frame))
    good, _ = run_h2load(find_h2load(), url, frame, tmp_path, "good", duration_s=1, clients=2)
    bad, _ = run_h2load(find_h2load(), url, unknown, tmp_path, "bad", duration_s=1, clients=2)
    assert good.requests > 0 and answered_in_full(good, answer_bytes)
    assert bad.requests > 0 and not bad.errors["status"]  # h2load saw HTTP 200s
    assert not answered_in_full(bad, answer_bytes)


def test_table_gives_medians_and_per_round_ratios() -> None:
    figures = {
        "grpc_heart_batch": {"mlserver": [100.0, 200.0, 100.0], "modelserve": [300.0, 300.0, 400.0]},
        "v2_heart_batch_binary": {"mlserver": [], "modelserve": [500.0, 700.0, 600.0]},
    }
    lines = table(figures, {"grpc_heart_batch": 1000, "v2_heart_batch_binary": 1000})
    assert lines[2] == "| grpc_heart_batch | 100 rows/s | 300 rows/s | 3.00 | 3.00, 1.50, 4.00 |"
    assert lines[3] == "| v2_heart_batch_binary | (no binary tensors) | 600 rows/s | | |"
