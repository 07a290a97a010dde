"""gRPC load with h2load (Debian's nghttp2-client): one pre-encoded ModelInfer call, sent as fast as
the server answers, over HTTP/2 as a gRPC client sends it.

Why not a Python gRPC client: one grpcio client process saturates a core at a few thousand calls/s, so
it would measure itself. h2load is C and spends ~10 µs of CPU per call. It cannot read gRPC's status
(a trailer), so the scenario's one call through grpcio first proves the request is answered; h2load's
own check is the HTTP status, and its per-request log gives the latency percentiles.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from pathlib import Path

import numpy as np

from bench.wrk import PERCENTILES, WrkError, WrkResult

_FINISHED = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")
_TRAFFIC = re.compile(r"traffic: \S+ \((\d+)\) total")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored"
)


def find_h2load() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise WrkError("h2load is not installed: `make tools` installs it (Debian package nghttp2-client)")
    return path


def latency_percentiles(log: Path) -> dict[str, float]:
    """p50.. from h2load's log (start µs, status, duration µs per request), in milliseconds."""
    rows = np.loadtxt(log, dtype=np.int64, ndmin=2, usecols=(1, 2)) if log.stat().st_size else np.empty((0, 2))
    done = rows[rows[:, 0] == 200][:, 1] / 1000.0
    if not len(done):
        return {}
    figures = {f"p{str(p).removesuffix('.0').replace('.', '')}": float(np.percentile(done, p)) for p in PERCENTILES}
    return {"min": float(done.min()), "mean": float(done.mean()), "max": float(done.max()), **figures}


def run_h2load(
    h2load: str,
    url: str,
    frame: bytes,
    workdir: Path,
    name: str,
    *,
    duration_s: float,
    clients: int,
    streams: int = 1,
) -> tuple[WrkResult, float]:
    """`clients` HTTP/2 connections, each with up to `streams` calls in flight, for `duration_s`;
    the result and h2load's own CPU seconds."""
    data, log = workdir / f"{name}.grpc", workdir / f"{name}.h2load.log"
    data.write_bytes(frame)
    command = [
        h2load,
        f"--duration={max(1, round(duration_s * 1000))}ms",
        f"--clients={clients}",
        f"--max-concurrent-streams={streams}",
        "--threads=1",
        f"--data={data}",
        "--header=content-type: application/grpc",
        "--header=te: trailers",
        f"--log-file={log}",
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=duration_s + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise WrkError(f"h2load exited with {done.returncode}: {done.stderr.strip()[:500]}")
    finished, counts = _FINISHED.search(done.stdout), _REQUESTS.search(done.stdout)
    traffic = _TRAFFIC.search(done.stdout)
    if finished is None or counts is None or traffic is None:
        raise WrkError(f"h2load's output was not understood: {done.stdout[-500:]}")
    succeeded, failed, errored = (int(counts[i]) for i in (4, 5, 6))
    seconds = float(finished[1]) / (1000.0 if finished[2] == "ms" else 1.0)
    result = WrkResult(
        requests=succeeded,
        duration_s=seconds,
        requests_per_s=succeeded / seconds,
        latency_ms=latency_percentiles(log),
        errors={"connect": 0, "read": errored, "write": 0, "status": failed, "timeout": 0},
        bytes_read=int(traffic[1]),
    )
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def grpc_call(port: int, method: str, frame: bytes, rows: int) -> tuple[int, bytes]:
    """The scenario's call once through grpcio: (200, b"") when answered with `rows` rows in every output,
    else (an HTTP-like status, the gRPC error), as check_response takes it."""
    import grpc

    from service.api.grpc import inference_pb2 as pb

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method)  # bytes in, bytes out: the frame's message as it is
        try:
            answer = pb.ModelInferResponse.FromString(call(frame[5:], timeout=10))
        except grpc.RpcError as error:
            return 500, f"{error.code()}: {error.details()}".encode()
    shapes = [list(output.shape) for output in answer.outputs]
    if not shapes or any(shape[:1] != [rows] for shape in shapes):
        return 500, f"expected outputs of {rows} rows, got shapes {shapes}".encode()
    return 200, b""
