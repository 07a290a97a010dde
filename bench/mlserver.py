"""`python -m bench.mlserver`: the service against MLServer on the same model and the same V2 bytes, in one run,
over REST JSON and over gRPC.

Why: issue 12's goals are relative to MLServer (a 1000-row heart batch over V2 JSON at ≥ 1.3× MLServer's rows/s
on the same body; over REST binary or gRPC at ≥ 1,000,000 rows/s, which only means something on this shared
machine next to MLServer's figure from the same run). MLServer 1.7 runs from its own virtualenv
(`make bench-mlserver` makes `.venv-mlserver`; its dependencies conflict with the service's), with
`parallel_workers: 0` (its default of 1 dies at start-up with uvloop ≥ 0.22, FIELD-NOTES) so both sides are one
process, serving the current heart version's model.onnx through bench/competition/mlserver_runtime.py.

Both answer the same bytes: V2 JSON (bench.payloads: one [N, 1] input per feature, FP64 and BYTES) driven by
wrk, and gRPC ModelInfer with `raw_input_contents` (FP32 and BYTES, as tritonclient.grpc sends by default, the
same pre-encoded frame) driven by h2load at each server's own gRPC port. Before timing, each scenario's answer
from both is read and their probabilities compared (bench.answers), so a fast wrong answer is no result. Every
round runs each scenario on both, alternating which goes first, as bench.ab does. The service's REST
binary-tensor batch (tritonclient.http's default) runs on the service alone: MLServer does not implement
Triton's binary extension.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import answers
from bench.ab import ROOT, start, worktree
from bench.ab import measure as measure_wrk
from bench.h2load import find_h2load, run_h2load
from bench.payloads import build_payloads, current_version_dir
from bench.processes import Server, free_port, http_request, start_server, stop, wait_ready
from bench.scenarios import Scenario, check_response, service_scenarios
from bench.wrk import WrkResult, find_wrk

RUNTIME = Path(__file__).with_name("competition") / "mlserver_runtime.py"
BOTH = ("v2_heart", "v2_heart_batch", "grpc_heart", "grpc_heart_batch")  # the same bytes to both servers
SERVICE_ONLY = ("v2_heart_batch_binary",)
SIDES = ("mlserver", "modelserve")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mlserver", description=__doc__)
    parser.add_argument("--mlserver", type=Path, default=ROOT / ".venv-mlserver" / "bin" / "mlserver")
    parser.add_argument("--artifacts-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections, h2load clients")
    parser.add_argument("--revision", help="run the service at this git revision (default: the working tree)")
    return parser.parse_args(argv)


def mlserver_config(directory: Path, version_dir: Path, port: int) -> dict[str, object]:
    """settings.json and heart/model-settings.json (MLServer imports the runtime from the model's folder);
    returns the settings (its `grpc_port` is where the gRPC scenarios go)."""
    settings: dict[str, object] = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
        "host": "127.0.0.1",
        "debug": False,  # as in production: no per-request access log (the service keeps its own on)
    }
    (directory / "settings.json").write_text(json.dumps(settings))
    model = directory / "heart"
    model.mkdir()
    shutil.copy(RUNTIME, model / RUNTIME.name)
    model_settings = {
        "name": "heart",
        "implementation": f"{RUNTIME.stem}.HeartOnnx",
        "parameters": {"uri": str(version_dir.resolve())},
    }
    (model / "model-settings.json").write_text(json.dumps(model_settings))
    return settings


def start_mlserver(mlserver: Path, version_dir: Path, work: Path) -> tuple[Server, int]:
    """MLServer, ready; and its gRPC port."""
    if not mlserver.exists():
        raise SystemExit(f"{mlserver} not found: `make bench-mlserver` installs MLServer into .venv-mlserver")
    port = free_port()
    config = work / "mlserver"
    config.mkdir()
    settings = mlserver_config(config, version_dir, port)
    command = [str(mlserver.absolute()), "start", str(config)]  # absolute: it starts in `work`
    # In the run's directory: MLServer keeps its metrics files in ./.metrics of wherever it starts.
    server = start_server("mlserver", command, dict(os.environ), port, work / "mlserver.log", cwd=work)
    try:
        wait_ready(server, time.perf_counter(), "/v2/models/heart/ready", 120.0)
    except BaseException:
        stop(server)
        raise
    return server, int(str(settings["grpc_port"]))


def start_service(tree: Path, artifacts: Path, work: Path) -> tuple[Server, int]:
    """`python -m service` from `tree` (bench.ab.start), with gRPC on a free port (bench's default is off)."""
    grpc_port = free_port()
    return start("modelserve", tree, artifacts, work, {"SERVICE_GRPC_PORT": str(grpc_port)}), grpc_port


def side_scenarios(scenarios: list[Scenario], grpc_ports: dict[str, int]) -> dict[str, list[Scenario]]:
    """Each side's scenarios: MLServer only those in BOTH; gRPC ones aimed at that side's own gRPC port."""
    picked: dict[str, list[Scenario]] = {}
    for side in SIDES:
        mine = [s for s in scenarios if side == "modelserve" or s.name in BOTH]
        picked[side] = [replace(s, grpc_port=grpc_ports[side]) if s.grpc_port else s for s in mine]
    return picked


def answer(server: Server, scenario: Scenario) -> np.ndarray | None:
    """The scenario's request once: its probabilities (V2 JSON, gRPC), or None for a REST binary answer,
    which check_response checks for its rows. Exits naming the side and scenario on a wrong answer."""
    try:
        if scenario.grpc_port:
            frame = scenario.body or b""
            return answers.grpc_probabilities(answers.grpc_answer(scenario.grpc_port, scenario.path, frame))
        headers = {"content-type": scenario.content_type, **dict(scenario.headers)}
        status, body = http_request(server.port, "POST", scenario.path, scenario.body, headers=headers)
        check_response(scenario, status, body)
        return answers.json_probabilities(body) if scenario.content_type == "application/json" else None
    except Exception as error:  # any failure here means: do not time this scenario
        raise SystemExit(f"{server.name} did not answer {scenario.name} correctly: {error}") from None


def check_answers(servers: dict[str, Server], per_side: dict[str, list[Scenario]]) -> None:
    """Each server answers each of its scenarios before anything is timed; where several answer the same
    scenario, with the same probabilities (they run the same model.onnx). Exits naming what differs."""
    names = dict.fromkeys(s.name for scenarios in per_side.values() for s in scenarios)
    for name in names:
        mine = {side: s for side, scenarios in per_side.items() for s in scenarios if s.name == name}
        found = {side: answer(servers[side], scenario) for side, scenario in mine.items()}
        try:
            rows = next(iter(mine.values())).rows
            answers.same_answers({side: v for side, v in found.items() if v is not None}, rows)
        except answers.AnswerError as error:
            raise SystemExit(f"{name}: {error}") from None
        alike = ", alike" if len(found) > 1 else ""
        print(f"{name}: {rows} rows answered by {' and '.join(found)}{alike}", flush=True)


def measure(server: Server, scenario: Scenario, wrk: str, work: Path, args: argparse.Namespace) -> float:
    """Requests/s (rows/s for batches) of one run after a 1-second warm-up: wrk, or h2load for gRPC."""
    if not scenario.grpc_port:
        return measure_wrk(server, scenario, wrk, work, args)
    url, h2load = f"http://127.0.0.1:{scenario.grpc_port}{scenario.path}", find_h2load()
    name, frame = f"{server.name}-{scenario.name}", scenario.body or b""
    run_h2load(h2load, url, frame, work, f"{name}-warm", duration_s=1, clients=args.connections)
    answer_bytes = len(answers.grpc_answer(scenario.grpc_port, scenario.path, frame))  # still answered after it
    result, _ = run_h2load(h2load, url, frame, work, name, duration_s=args.duration, clients=args.connections)
    if result.errors["status"] or result.errors["read"] or not answered_in_full(result, answer_bytes):
        raise SystemExit(f"{name}: h2load saw failed calls ({result.errors}, {result.bytes_read} bytes read)")
    return result.requests_per_s * scenario.rows


def answered_in_full(result: WrkResult, answer_bytes: int) -> bool:
    """h2load counts a gRPC error as a success (HTTP 200, the error in a trailer, no message): the run read at
    least an answer's bytes per call, or some calls were errors."""
    return result.bytes_read >= result.requests * answer_bytes


def table(figures: dict[str, dict[str, list[float]]], rows: dict[str, int]) -> list[str]:
    """Markdown: per scenario each side's median, the median of the per-round ratios, and those ratios (their
    spread is the run's noise)."""
    lines = [
        "| scenario | MLServer | modelserve | modelserve ÷ MLServer (median of rounds) | per-round ratios |",
        "|---|---:|---:|---:|---|",
    ]
    for name, sides in figures.items():
        unit = "rows/s" if rows[name] > 1 else "req/s"
        ours = f"{statistics.median(sides['modelserve']):,.0f} {unit}"
        if not sides["mlserver"]:
            lines.append(f"| {name} | (no binary tensors) | {ours} | | |")
            continue
        ratios = [h / b for b, h in zip(sides["mlserver"], sides["modelserve"], strict=True)]
        theirs = f"{statistics.median(sides['mlserver']):,.0f} {unit}"
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(f"| {name} | {theirs} | {ours} | {statistics.median(ratios):.2f} | {shown} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = find_wrk()
    find_h2load()  # fail before starting anything
    payloads = build_payloads(args.artifacts_dir)
    tree = worktree(args.revision) if args.revision else nullcontext(ROOT)
    with tree as service_tree, tempfile.TemporaryDirectory(prefix="bench-mlserver-") as work_dir:
        work = Path(work_dir)
        servers, grpc_ports = {}, {}
        version_dir = current_version_dir(args.artifacts_dir, "heart")
        servers["mlserver"], grpc_ports["mlserver"] = start_mlserver(args.mlserver, version_dir, work)
        try:
            servers["modelserve"], grpc_ports["modelserve"] = start_service(service_tree, args.artifacts_dir, work)
            wanted = [s for s in service_scenarios(payloads, grpc_ports["modelserve"]) if s.name in BOTH + SERVICE_ONLY]
            per_side = side_scenarios(wanted, grpc_ports)
            figures = {s.name: {side: [] for side in SIDES} for s in wanted}
            check_answers(servers, per_side)
            for round_index in range(args.rounds):
                order = SIDES if round_index % 2 == 0 else SIDES[::-1]
                for name in figures:
                    for side in order:
                        for scenario in (s for s in per_side[side] if s.name == name):
                            figures[name][side].append(measure(servers[side], scenario, wrk, work, args))
                print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        finally:
            for server in servers.values():
                stop(server)
    which = args.revision or "working tree"
    print(f"\nmodelserve ({which}) and MLServer, 1 process each; {args.rounds} rounds of {args.duration:g} s")
    print(f"(REST: wrk -t1 -c{args.connections}; gRPC: h2load, {args.connections} clients × 1 stream)\n")
    print("\n".join(table(figures, {s.name: s.rows for s in wanted})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
