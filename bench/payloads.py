"""Request bodies for the scenarios, built from a trained artifact's `reference.json`.

Everything here is plain data (dicts and JSON bytes), so the scenarios and the tests share it.
"""

from __future__ import annotations

import itertools
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.api.grpc import inference_pb2 as pb
from service.contract import CURRENT_FILE, HEART_EXAMPLE, HEART_FEATURE_NAMES, REFERENCE_FILE

BATCH_ROWS = 1000


@dataclass(frozen=True)
class Payloads:
    """The JSON bodies every scenario sends."""

    heart_one: bytes
    digit_one: bytes
    heart_batch: bytes
    digit_batch: bytes
    heart_version: str
    digits_version: str
    batch_rows: int
    # The same heart rows as Open Inference Protocol (V2) JSON: one input per feature, flat `data`
    v2_heart_one: bytes = b""
    v2_heart_batch: bytes = b""
    # The same as tritonclient sends them by default: REST with binary tensors (body, JSON header length)
    # and gRPC with raw_input_contents (a ModelInferRequest in gRPC's length-prefixed framing)
    v2_heart_one_binary: tuple[bytes, int] = (b"", 0)
    v2_heart_batch_binary: tuple[bytes, int] = (b"", 0)
    grpc_heart_one: bytes = b""
    grpc_heart_batch: bytes = b""


def current_version_dir(artifacts_dir: Path, model: str) -> Path:
    """`artifacts/<model>/<CURRENT>`; raises FileNotFoundError naming what is missing."""
    current = artifacts_dir / model / CURRENT_FILE
    if not current.is_file():
        raise FileNotFoundError(f"{current} is missing: run `make train` first")
    version_dir = artifacts_dir / model / current.read_text(encoding="utf-8").strip()
    if not version_dir.is_dir():
        raise FileNotFoundError(f"{current} names {version_dir.name}, which does not exist")
    return version_dir


def reference_inputs(version_dir: Path) -> list[dict[str, Any]]:
    """The request bodies recorded in the version's reference.json."""
    reference = json.loads((version_dir / REFERENCE_FILE).read_text(encoding="utf-8"))
    inputs = reference["inputs"]
    if not inputs:
        raise ValueError(f"{version_dir / REFERENCE_FILE} holds no inputs")
    return inputs


def repeated_rows(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` rows cycling through `rows` in order."""
    return list(itertools.islice(itertools.cycle(rows), count))


def to_json(body: Any) -> bytes:
    """Compact JSON, as a client library would send it; NaN is refused (the API rejects it too)."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def v2_heart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Heart rows as one V2 inference request, columnar as Triton and MLServer clients send it: one
    `[N, 1]` input per feature with flat `data` (`null` where a row misses the value)."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows), 1],
                "datatype": "BYTES" if name == "thal" else "FP64",
                "data": [row.get(name) for row in rows],
            }
            for name in HEART_FEATURE_NAMES
        ]
    }


def _tensor_bytes(name: str, values: list[Any]) -> tuple[str, bytes]:
    """One feature's column as raw little-endian bytes: FP32 numbers, or BYTES (4-byte length, then UTF-8)."""
    if name == "thal":
        return "BYTES", b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return "FP32", np.asarray(values, dtype="<f4").tobytes()


def complete(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that miss no feature: a raw BYTES tensor has no way to say missing (FP32 would, as NaN)."""
    return [row for row in rows if all(row.get(name) is not None for name in HEART_FEATURE_NAMES)]


def v2_heart_binary(rows: list[dict[str, Any]]) -> tuple[bytes, int]:
    """Heart rows as tritonclient.http sends them by default: every input's data as raw bytes after the
    JSON header, binary outputs asked for; (body, header length)."""
    columns = [(name, *_tensor_bytes(name, [row[name] for row in rows])) for name in HEART_FEATURE_NAMES]
    inputs = [
        {"name": name, "shape": [len(rows), 1], "datatype": kind, "parameters": {"binary_data_size": len(data)}}
        for name, kind, data in columns
    ]
    header = to_json({"inputs": inputs, "parameters": {"binary_data_output": True}})
    return header + b"".join(data for _, _, data in columns), len(header)


def grpc_heart(rows: list[dict[str, Any]]) -> bytes:
    """Heart rows as tritonclient.grpc sends them by default (raw_input_contents), framed as on the wire:
    a 0 (not compressed), the message's length (4 bytes, big-endian), the message."""
    request = pb.ModelInferRequest(model_name="heart")
    for name in HEART_FEATURE_NAMES:
        kind, data = _tensor_bytes(name, [row[name] for row in rows])
        request.inputs.add(name=name, datatype=kind, shape=[len(rows), 1])
        request.raw_input_contents.append(data)
    message = request.SerializeToString()
    return b"\x00" + struct.pack(">I", len(message)) + message


def build_payloads(artifacts_dir: Path, batch_rows: int = BATCH_ROWS) -> Payloads:
    """Single bodies (the tutorial patient; the first digits reference row) and `batch_rows`-row batches."""
    heart_dir = current_version_dir(artifacts_dir, "heart")
    digits_dir = current_version_dir(artifacts_dir, "digits")
    heart_rows = reference_inputs(heart_dir)
    digit_rows = reference_inputs(digits_dir)
    digit_one = next((row for row in digit_rows if "pixels" in row), None)
    if digit_one is None:
        raise ValueError(f"{digits_dir / REFERENCE_FILE} has no `pixels` input")
    return Payloads(
        heart_one=to_json(HEART_EXAMPLE),
        digit_one=to_json({"pixels": digit_one["pixels"]}),
        heart_batch=to_json({"instances": repeated_rows(heart_rows, batch_rows)}),
        digit_batch=to_json({"instances": repeated_rows([r for r in digit_rows if "pixels" in r], batch_rows)}),
        heart_version=heart_dir.name,
        digits_version=digits_dir.name,
        batch_rows=batch_rows,
        v2_heart_one=to_json(v2_heart([HEART_EXAMPLE])),
        v2_heart_batch=to_json(v2_heart(repeated_rows(heart_rows, batch_rows))),
        v2_heart_one_binary=v2_heart_binary([HEART_EXAMPLE]),
        v2_heart_batch_binary=v2_heart_binary(repeated_rows(complete(heart_rows), batch_rows)),
        grpc_heart_one=grpc_heart([HEART_EXAMPLE]),
        grpc_heart_batch=grpc_heart(repeated_rows(complete(heart_rows), batch_rows)),
    )
