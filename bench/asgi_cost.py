"""CPU cost of the service's own request path, in-process: µs of CPU per request through the ASGI app.

No server, no sockets, no load generator: the app built by `service.app.create_app` is called with
ASGI messages in a loop, after its lifespan loaded the models, and `time.process_time` says what each
request cost. That leaves out what no change to this project's code moves (the server's HTTP parsing,
the kernel), and with it most of the noise of a shared machine, so a few per cent are visible.
`python -m bench.ab --cost` runs it for a base revision and the working tree, in bursts, alternating.

Run as `python bench/asgi_cost.py ARTIFACTS_DIR` with the tree to measure first on PYTHONPATH; it reads
commands on stdin (see `serve_commands`).
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import time
from pathlib import Path
from typing import Any

HEART = {
    "age": 80, "sex": 0, "cp": 1, "trestbps": 124, "chol": 300, "fbs": 1, "restecg": 2,
    "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": "fixed",
}  # fmt: skip
NULLS = {**HEART, "ca": None, "thal": None}
JSON_TYPE = ((b"content-type", b"application/json"),)


def _v2(rows: list[dict[str, Any]]) -> bytes:
    """Heart rows as one V2 JSON request, one [N, 1] input per feature (as bench/payloads.py's v2_heart)."""
    inputs = [
        {"name": name, "shape": [len(rows), 1], "datatype": "BYTES" if name == "thal" else "FP64", "data": values}
        for name, values in ((name, [row[name] for row in rows]) for name in HEART)
    ]
    return json.dumps({"inputs": inputs}, separators=(",", ":")).encode()


def _v2_binary(rows: list[dict[str, Any]]) -> tuple[bytes, tuple[tuple[bytes, bytes], ...]]:
    """Heart rows as tritonclient.http sends them by default: FP32/BYTES after the JSON, binary outputs."""
    raw = {
        name: b"".join(
            struct.pack("<I", len(row[name].encode())) + row[name].encode()
            if name == "thal"
            else struct.pack("<f", row[name])
            for row in rows
        )
        for name in HEART
    }
    inputs = [
        {
            "name": name,
            "shape": [len(rows), 1],
            "datatype": "BYTES" if name == "thal" else "FP32",
            "parameters": {"binary_data_size": len(data)},
        }
        for name, data in raw.items()
    ]
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    headers = (
        (b"content-type", b"application/octet-stream"),
        (b"inference-header-content-length", b"%d" % len(header)),
    )
    return header + b"".join(raw.values()), headers


def _scope(method: str, path: str, headers: tuple[tuple[bytes, bytes], ...] = JSON_TYPE) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _request(
    app: Any, method: str, path: str, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = JSON_TYPE
) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, path, headers), receive, send)
    return status


async def _lifespan(app: Any) -> asyncio.Queue[dict[str, Any]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    asyncio.get_running_loop().create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"start-up failed: {message}")
    return inbox


Case = tuple[str, str, bytes, int] | tuple[str, str, bytes, int, tuple[tuple[bytes, bytes], ...]]
V2 = "/v2/models/heart/infer"


def cases(artifacts: Path) -> dict[str, Case]:
    """Scenario → (method, path, body, concurrency[, headers])."""
    one = json.dumps(HEART).encode()
    binary, binary_headers = _v2_binary([HEART])
    # 1000 rows, the three thal categories in turn (BYTES elements of different lengths, as users send them)
    thals = [{**HEART, "thal": thal} for thal in ("normal", "fixed", "reversible")]
    binary_batch, binary_batch_headers = _v2_binary((thals * 334)[:1000])
    return {
        "health": ("GET", "/health/live", b"", 1),
        "heart": ("POST", "/predict/heart", one, 1),
        "heart_x32": ("POST", "/predict/heart", one, 32),  # 32 concurrent: they share micro-batches
        "heart_batch": ("POST", "/predict/heart/batch", json.dumps({"instances": [HEART] * 1000}).encode(), 1),
        # as a pandas user sends missing values: explicit nulls (ca and thal, in every other row)
        "heart_batch_nulls": (
            "POST",
            "/predict/heart/batch",
            json.dumps({"instances": [HEART, NULLS] * 500}).encode(),
            1,
        ),
        # the Open Inference Protocol: a single row over JSON (alone, and 32 at once) and binary, a 1000-row batch
        "v2_heart": ("POST", V2, _v2([HEART]), 1),
        "v2_heart_x32": ("POST", V2, _v2([HEART]), 32),
        "v2_heart_binary": ("POST", V2, binary, 1, binary_headers),
        "v2_heart_binary_x32": ("POST", V2, binary, 32, binary_headers),  # as tritonclient.http sends one row
        "v2_heart_batch": ("POST", V2, _v2([HEART, NULLS] * 500), 1),
        "v2_heart_batch_binary": ("POST", V2, binary_batch, 1, binary_batch_headers),
    }


async def serve_commands(artifacts: Path) -> None:
    """Load the app, say `ready`, then answer each `<scenario> <requests>` line on stdin with the CPU µs
    per request of that burst, until stdin closes. The parent alternates bursts between two trees, so
    both see the same machine within a fraction of a second (bench/ab.py --cost)."""
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(artifacts_dir=artifacts, reload_interval=0, access_log=False))
    await _lifespan(app)
    known = cases(artifacts)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _reply("ready")
    while line := (await reader.readline()).decode().split():
        name, requests = line[0], int(line[1])
        method, path, body, concurrency, *headers = known[name]
        started = time.process_time()
        for _ in range(max(1, requests // concurrency)):
            statuses = await asyncio.gather(*(_request(app, method, path, body, *headers) for _ in range(concurrency)))
            if set(statuses) != {200}:
                raise RuntimeError(f"{name}: statuses {set(statuses)}")
        done = max(1, requests // concurrency) * concurrency
        _reply(f"{(time.process_time() - started) / done * 1e6:.3f}")


def _reply(text: str) -> None:
    sys.__stdout__.write(text + "\n")
    sys.__stdout__.flush()


def main() -> None:
    asyncio.run(serve_commands(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
