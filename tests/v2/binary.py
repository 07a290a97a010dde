"""Triton's binary tensor framing, written independently of the service: a JSON header, then raw bytes."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8"}


def raw(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return np.asarray(values, dtype=DTYPES[datatype]).tobytes()


def frame(inputs: list[dict[str, Any]], binary: set[str], **envelope: Any) -> tuple[bytes, dict[str, str]]:
    """The JSON inputs with those named in `binary` moved after the header; body and headers."""
    tensors, parts = [], []
    for tensor in inputs:
        if tensor["name"] not in binary:
            tensors.append(tensor)
            continue
        flat = np.asarray(tensor["data"], dtype=object).reshape(-1).tolist()
        data = raw(tensor["datatype"], flat)
        parts.append(data)
        described = {k: v for k, v in tensor.items() if k != "data"}
        tensors.append({**described, "parameters": {"binary_data_size": len(data)}})
    header = json.dumps({"inputs": tensors, **envelope}).encode()
    return header + b"".join(parts), {"Inference-Header-Content-Length": str(len(header))}


def unframe(body: bytes, header_length: int) -> dict[str, Any]:
    """A binary response's JSON with each binary output's values decoded into `data`."""
    answer = json.loads(body[:header_length])
    offset = header_length
    for tensor in answer["outputs"]:
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        chunk = body[offset : offset + size]
        offset += size
        if tensor["datatype"] == "BYTES":
            values, at = [], 0
            while at < len(chunk):
                (length,) = struct.unpack_from("<I", chunk, at)
                values.append(chunk[at + 4 : at + 4 + length].decode())
                at += 4 + length
            tensor["data"] = values
        else:
            tensor["data"] = np.frombuffer(chunk, dtype=DTYPES[tensor["datatype"]]).tolist()
    assert offset == len(body), "the sizes of the binary outputs add up to the body"
    return answer
