"""The REST-binary and gRPC scenarios send what tritonclient sends, and wrk sends a binary body byte for byte.

The payloads are read back here independently (Triton's framing by hand, the gRPC frame through the
protocol's messages) and compared with the JSON scenario's rows; wrk's request is caught by a real
socket server and compared with the payload.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from bench.payloads import build_payloads, complete, reference_inputs, repeated_rows
from bench.scenarios import GRPC_INFER, V2_HEART, check_response, service_scenarios
from bench.wrk import WrkError, find_wrk, lua_script
from service.api.grpc import inference_pb2 as pb
from service.contract import HEART_FEATURE_NAMES


def _columns_from_raw(kinds: list[str], chunks: list[bytes]) -> dict[str, list[object]]:
    columns: dict[str, list[object]] = {}
    for name, kind, chunk in zip(HEART_FEATURE_NAMES, kinds, chunks, strict=True):
        if kind == "BYTES":
            values, offset = [], 0
            while offset < len(chunk):
                (size,) = struct.unpack_from("<I", chunk, offset)
                values.append(chunk[offset + 4 : offset + 4 + size].decode())
                offset += 4 + size
            columns[name] = values
        else:
            assert kind == "FP32"
            columns[name] = np.frombuffer(chunk, dtype="<f4").tolist()
    return columns


def _expected(rows: list[dict[str, object]]) -> dict[str, list[object]]:
    return {
        name: [row[name] if name == "thal" else float(np.float32(row[name])) for row in rows]  # type: ignore[arg-type]
        for name in HEART_FEATURE_NAMES
    }


def test_binary_and_grpc_payloads_carry_the_reference_rows(small_artifacts: Path, heart_version: Path) -> None:
    payloads = build_payloads(small_artifacts, batch_rows=9)
    rows = repeated_rows(complete(reference_inputs(heart_version)), 9)
    assert rows and all(row.get(name) is not None for row in rows for name in HEART_FEATURE_NAMES)

    body, header_length = payloads.v2_heart_batch_binary
    header = json.loads(body[:header_length])
    assert header["parameters"] == {"binary_data_output": True}
    sizes = [tensor["parameters"]["binary_data_size"] for tensor in header["inputs"]]
    assert header_length + sum(sizes) == len(body)
    chunks = [body[header_length + sum(sizes[:i]) : header_length + sum(sizes[: i + 1])] for i in range(len(sizes))]
    kinds = [tensor["datatype"] for tensor in header["inputs"]]
    assert [tensor["shape"] for tensor in header["inputs"]] == [[9, 1]] * len(HEART_FEATURE_NAMES)
    assert _columns_from_raw(kinds, chunks) == _expected(rows)

    frame = payloads.grpc_heart_batch
    assert frame[0] == 0 and struct.unpack(">I", frame[1:5])[0] == len(frame) - 5
    request = pb.ModelInferRequest.FromString(frame[5:])
    assert request.model_name == "heart"
    assert [tuple(tensor.shape) for tensor in request.inputs] == [(9, 1)] * len(HEART_FEATURE_NAMES)
    grpc_columns = _columns_from_raw([t.datatype for t in request.inputs], list(request.raw_input_contents))
    assert grpc_columns == _expected(rows)


def test_the_scenarios_cover_every_wire_form(small_artifacts: Path) -> None:
    payloads = build_payloads(small_artifacts, batch_rows=5)
    scenarios = {s.name: s for s in service_scenarios(payloads, grpc_port=1234)}
    binary = scenarios["v2_heart_batch_binary"]
    assert (binary.path, binary.content_type, binary.rows) == (V2_HEART, "application/octet-stream", 5)
    assert dict(binary.headers) == {"Inference-Header-Content-Length": str(payloads.v2_heart_batch_binary[1])}
    for name in ("grpc_heart", "grpc_heart_batch"):
        assert (scenarios[name].path, scenarios[name].grpc_port) == (GRPC_INFER, 1234)
    assert "grpc_heart" not in {s.name for s in service_scenarios(payloads)}  # no gRPC port: no gRPC scenarios
    # a binary answer: its JSON header is read for the row count, the raw outputs after it are not JSON
    answer = json.dumps({"outputs": [{"name": "probability", "shape": [5], "parameters": {}}]}).encode()
    check_response(binary, 200, answer + np.zeros(5, dtype="<f4").tobytes())
    with pytest.raises(WrkError, match="5 rows"):
        check_response(binary, 200, answer.replace(b"[5]", b"[4]") + b"\x00" * 16)


def _catch_one_request(server: socket.socket, caught: list[bytes]) -> None:
    """The first request that arrives with a body (wrk may open a connection and close it unused)."""
    while not caught:
        connection, _ = server.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data and (chunk := connection.recv(65536)):
                data += chunk
            if b"\r\n\r\n" not in data:
                continue
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
            while len(rest) < length:
                rest += connection.recv(65536)
            caught.extend([head, rest[:length]])
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_wrk_sends_a_binary_body_byte_for_byte(tmp_path: Path) -> None:
    body = b'{"inputs": []}' + bytes(range(256)) + b'\r\n\r\n\x00"\\]]'
    script = tmp_path / "binary.lua"
    script.write_text(
        lua_script("POST", body, "application/octet-stream", (("Inference-Header-Content-Length", "14"),))
    )
    with socket.create_server(("127.0.0.1", 0)) as server:
        caught: list[bytes] = []
        thread = threading.Thread(target=_catch_one_request, args=(server, caught), daemon=True)
        thread.start()
        port = server.getsockname()[1]
        wrk = subprocess.run(
            [find_wrk(), "-t1", "-c1", "-d1s", "-s", str(script), f"http://127.0.0.1:{port}/"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        thread.join(timeout=10)
    assert caught, wrk.stderr
    head, sent = caught
    assert sent == body
    assert b"inference-header-content-length: 14" in head.lower()
    assert b"content-type: application/octet-stream" in head.lower()
