"""The scenarios: what is sent to which route, and one measured wrk run of each."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.h2load import find_h2load, grpc_call, run_h2load
from bench.payloads import Payloads
from bench.processes import Server, cpu_seconds, http_request, system_busy_seconds, wait_for_quiet
from bench.wrk import WrkError, lua_script, run_wrk

V2_HEART = "/v2/models/heart/infer"
GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"
_BINARY = "application/octet-stream"

BUSY_SHARE = 0.10  # of one core: more than this used by other processes marks a run as disturbed


@dataclass(frozen=True)
class Scenario:
    """One route driven with one fixed request."""

    name: str
    title: str
    method: str
    path: str
    body: bytes | None = None
    rows: int = 1  # rows predicted per request (batches: rows/s = rows × requests/s)
    # wrk connections, if not the run's: 1 for a scenario whose figure is one request's own latency
    connections: int | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    grpc_port: int | None = None  # a gRPC call (`path` is its method) driven by h2load, not wrk


@dataclass(frozen=True)
class LoadSettings:
    duration_s: float = 10.0
    warmup_s: float = 2.0
    connections: int = 32
    threads: int = 1
    quiet_wait_s: float = 30.0  # wait up to this long for other processes to go quiet before each run
    busy_retries: int = 2  # measure again while other processes took over BUSY_SHARE of a core


@dataclass
class ScenarioResult:
    name: str
    title: str
    server: str
    method: str
    path: str
    rows_per_request: int
    body_bytes: int
    requests: int
    duration_s: float
    requests_per_s: float
    rows_per_s: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    server_cpu_s: float
    wrk_cpu_s: float
    other_cpu_s: float  # the rest of the machine: other processes competing for the 2 cores
    attempts: int = 1  # measured runs made (more than one when other processes disturbed the first)

    @property
    def busy(self) -> bool:
        """Other processes took more than BUSY_SHARE of a core during the measured run."""
        return self.other_cpu_s > BUSY_SHARE * (self.duration_s or 1.0)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _binary(name: str, title: str, payload: tuple[bytes, int], rows: int) -> Scenario:
    body, header_length = payload
    headers = (("Inference-Header-Content-Length", str(header_length)),)
    return Scenario(name, title, "POST", V2_HEART, body, rows, content_type=_BINARY, headers=headers)


def v2_scenarios(payloads: Payloads, grpc_port: int | None) -> list[Scenario]:
    """The Open Inference Protocol's three wire forms, tutorial patient and batch: REST JSON, REST with
    binary tensors, gRPC (with raw_input_contents); the binary ones as tritonclient sends by default."""
    rows, where = payloads.batch_rows, "POST /v2/models/heart/infer"
    scenarios = [
        Scenario("v2_heart", f"{where} (tutorial patient, JSON)", "POST", V2_HEART, payloads.v2_heart_one),
        Scenario("v2_heart_batch", f"{where} ({rows} rows, JSON)", "POST", V2_HEART, payloads.v2_heart_batch, rows),
        _binary("v2_heart_binary", f"{where} (tutorial patient, binary)", payloads.v2_heart_one_binary, 1),
        _binary("v2_heart_batch_binary", f"{where} ({rows} rows, binary)", payloads.v2_heart_batch_binary, rows),
    ]
    if grpc_port:
        where = "gRPC ModelInfer heart"
        scenarios += [
            Scenario(
                "grpc_heart",
                f"{where} (tutorial patient)",
                "POST",
                GRPC_INFER,
                payloads.grpc_heart_one,
                grpc_port=grpc_port,
            ),
            Scenario(
                "grpc_heart_batch",
                f"{where} ({rows} rows)",
                "POST",
                GRPC_INFER,
                payloads.grpc_heart_batch,
                rows,
                grpc_port=grpc_port,
            ),
        ]
    return scenarios


def service_scenarios(payloads: Payloads, grpc_port: int | None = None) -> list[Scenario]:
    """The service's scenarios, in the order they run (the V2 ones when their payloads were built)."""
    rows = payloads.batch_rows
    return [
        Scenario("health", "GET /health/live", "GET", "/health/live"),
        Scenario("heart", "POST /predict/heart (tutorial patient)", "POST", "/predict/heart", payloads.heart_one),
        Scenario("digit", "POST /predict/digit (64 pixels)", "POST", "/predict/digit", payloads.digit_one),
        # One connection: p50/p99 are one explanation's own latency, requests/s the explained patients/s of one
        # worker (an explanation is CPU-bound, ~3,000 coalition rows through onnxruntime; 32 connections would
        # only measure the queue).
        Scenario(
            "heart_explain",
            "POST /predict/heart?explain=true (tutorial patient, 1 connection)",
            "POST",
            "/predict/heart?explain=true",
            payloads.heart_one,
            connections=1,
        ),
        Scenario(
            "heart_batch",
            f"POST /predict/heart/batch ({rows} rows)",
            "POST",
            "/predict/heart/batch",
            payloads.heart_batch,
            rows=rows,
        ),
        Scenario(
            "digit_batch",
            f"POST /predict/digit/batch ({rows} rows)",
            "POST",
            "/predict/digit/batch",
            payloads.digit_batch,
            rows=rows,
        ),
        *(v2_scenarios(payloads, grpc_port) if payloads.v2_heart_one else []),
    ]


def tutorial_scenarios(payloads: Payloads) -> list[Scenario]:
    return [
        Scenario(
            "tutorial_heart",
            "tutorial recipe: POST /predict/heart (tutorial patient)",
            "POST",
            "/predict/heart",
            payloads.heart_one,
        )
    ]


def check_response(scenario: Scenario, status: int, body: bytes) -> None:
    """Refuse to benchmark a route that does not answer the request correctly (a fast 422 is no result)."""
    if status != 200:
        raise WrkError(f"{scenario.title}: the server answered {status}, not 200: {body[:500]!r}")
    if scenario.grpc_port:
        return  # grpc_call checked the rows
    if scenario.rows > 1 and scenario.path.startswith("/v2/"):
        # a binary answer is its JSON header, then the raw outputs: read the JSON value at its start
        answer = json.JSONDecoder().raw_decode(body.decode("latin-1"))[0]
        shapes = [output.get("shape") for output in answer.get("outputs", [])]
        if not shapes or any(shape[:1] != [scenario.rows] for shape in shapes):
            raise WrkError(f"{scenario.title}: expected outputs of {scenario.rows} rows, got shapes {shapes}")
    elif scenario.rows > 1:
        predictions = json.loads(body).get("predictions")
        if not isinstance(predictions, list) or len(predictions) != scenario.rows:
            raise WrkError(
                f"{scenario.title}: expected {scenario.rows} predictions, got "
                f"{len(predictions) if isinstance(predictions, list) else predictions!r}"
            )


def measure(
    wrk: str, server: Server, scenario: Scenario, settings: LoadSettings, workdir: Path, name: str
) -> ScenarioResult:
    """One measured wrk (or h2load) run, with the CPU the server, the load generator and the rest of the
    machine used meanwhile."""
    cpu_before = cpu_seconds(server.process.pid)
    busy_before = system_busy_seconds()
    connections = scenario.connections or settings.connections
    if scenario.grpc_port:
        url = f"http://127.0.0.1:{scenario.grpc_port}{scenario.path}"
        duration = settings.duration_s
        result, wrk_cpu = run_h2load(
            find_h2load(), url, scenario.body or b"", workdir, name, duration_s=duration, clients=connections
        )
    else:
        script = lua_script(scenario.method, scenario.body, scenario.content_type, scenario.headers)
        result, wrk_cpu = run_wrk(
            wrk,
            server.base_url + scenario.path,
            script,
            workdir,
            name,
            duration_s=settings.duration_s,
            connections=connections,
            threads=settings.threads,
        )
    server_cpu = cpu_seconds(server.process.pid) - cpu_before
    busy = system_busy_seconds() - busy_before
    return ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        server=server.name,
        method=scenario.method,
        path=scenario.path,
        rows_per_request=scenario.rows,
        body_bytes=len(scenario.body or b""),
        requests=result.requests,
        duration_s=result.duration_s,
        requests_per_s=result.requests_per_s,
        rows_per_s=result.requests_per_s * scenario.rows,
        latency_ms=result.latency_ms,
        errors=result.errors,
        server_cpu_s=server_cpu,
        wrk_cpu_s=wrk_cpu,
        other_cpu_s=max(0.0, busy - server_cpu - wrk_cpu),
    )


def run_scenario(wrk: str, server: Server, scenario: Scenario, settings: LoadSettings, workdir: Path) -> ScenarioResult:
    """A checked request, a warm-up run, then the measured run; measured again (up to
    `settings.busy_retries` times) while other processes took over `BUSY_SHARE` of a core, keeping
    the least disturbed run."""
    if scenario.grpc_port:
        status, body = grpc_call(scenario.grpc_port, scenario.path, scenario.body or b"", scenario.rows)
    else:
        headers = {"Content-Type": scenario.content_type, **dict(scenario.headers)}
        status, body = http_request(server.port, scenario.method, scenario.path, scenario.body, headers=headers)
    check_response(scenario, status, body)
    if settings.warmup_s > 0:
        warmup = LoadSettings(settings.warmup_s, 0, settings.connections, settings.threads)
        measure(wrk, server, scenario, warmup, workdir, f"{scenario.name}-warmup")
    best: ScenarioResult | None = None
    runs = 0
    while best is None or (best.busy and runs <= settings.busy_retries):
        if settings.quiet_wait_s > 0:
            wait_for_quiet(settings.quiet_wait_s, BUSY_SHARE)
        else:
            time.sleep(0.2)
        result = measure(wrk, server, scenario, settings, workdir, scenario.name + (f"-retry{runs}" if runs else ""))
        runs += 1
        if best is None or result.other_cpu_s < best.other_cpu_s:
            best = result
    best.attempts = runs
    return best
