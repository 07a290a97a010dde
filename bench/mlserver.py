"""`python -m bench.mlserver`: the service against MLServer on the same model and the same V2 bodies, in one run.

Why: issue 12's goal is relative (a 1000-row heart batch over V2 JSON at ≥ 1.3× MLServer's rows/s on the
same body), and on this shared machine only figures from one run compare. MLServer 1.7 runs from its own
virtualenv (`make bench-mlserver` makes `.venv-mlserver`; its dependencies conflict with the service's), with
`parallel_workers: 0` (its default of 1 dies at start-up with uvloop ≥ 0.22, FIELD-NOTES) so both sides are one
process, serving the current heart version's model.onnx through bench/competition/mlserver_runtime.py.
Both answer the same bytes (bench.payloads: one [N, 1] input per feature, FP64 and BYTES); every round runs
each scenario on both, alternating which goes first, as bench.ab does. The service's binary-tensor batch
(as tritonclient sends it) runs on the service alone: MLServer does not implement that extension.
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
from pathlib import Path

from bench.ab import ROOT, measure, start, worktree
from bench.payloads import build_payloads, current_version_dir
from bench.processes import Server, free_port, http_request, start_server, stop, wait_ready
from bench.scenarios import Scenario, service_scenarios
from bench.wrk import find_wrk

RUNTIME = Path(__file__).with_name("competition") / "mlserver_runtime.py"
BOTH = ("v2_heart", "v2_heart_batch")  # the same body to both servers
SERVICE_ONLY = ("v2_heart_batch_binary",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mlserver", description=__doc__)
    parser.add_argument("--mlserver", type=Path, default=ROOT / ".venv-mlserver" / "bin" / "mlserver")
    parser.add_argument("--artifacts-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--revision", help="run the service at this git revision (default: the working tree)")
    return parser.parse_args(argv)


def mlserver_config(directory: Path, version_dir: Path, port: int) -> None:
    """settings.json and heart/model-settings.json (MLServer imports the runtime from the model's folder)."""
    settings = {
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


def start_mlserver(mlserver: Path, version_dir: Path, work: Path) -> Server:
    if not mlserver.exists():
        raise SystemExit(f"{mlserver} not found: `make bench-mlserver` installs MLServer into .venv-mlserver")
    port = free_port()
    config = work / "mlserver"
    config.mkdir()
    mlserver_config(config, version_dir, port)
    command = [str(mlserver.absolute()), "start", str(config)]  # absolute: it starts in `work`
    # In the run's directory: MLServer keeps its metrics files in ./.metrics of wherever it starts.
    server = start_server("mlserver", command, dict(os.environ), port, work / "mlserver.log", cwd=work)
    try:
        wait_ready(server, time.perf_counter(), "/v2/models/heart/ready", 120.0)
    except BaseException:
        stop(server)
        raise
    return server


def check_answers(servers: dict[str, Server], scenarios: list[Scenario]) -> None:
    """Each server answers each of its scenarios' bodies with 200 before anything is timed."""
    for scenario in scenarios:
        for name, server in servers.items():
            if name == "mlserver" and scenario.name not in BOTH:
                continue
            headers = {"content-type": scenario.content_type, **dict(scenario.headers)}
            status, body = http_request(server.port, "POST", scenario.path, scenario.body, headers=headers)
            if status != 200:
                raise SystemExit(f"{name} answered {status} to {scenario.name}: {body[:300]!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = find_wrk()
    payloads = build_payloads(args.artifacts_dir)
    scenarios = [s for s in service_scenarios(payloads) if s.name in BOTH + SERVICE_ONLY]
    figures: dict[str, dict[str, list[float]]] = {s.name: {"mlserver": [], "modelserve": []} for s in scenarios}
    tree = worktree(args.revision) if args.revision else nullcontext(ROOT)
    with tree as service_tree, tempfile.TemporaryDirectory(prefix="bench-mlserver-") as work_dir:
        work = Path(work_dir)
        servers = {"mlserver": start_mlserver(args.mlserver, current_version_dir(args.artifacts_dir, "heart"), work)}
        try:
            servers["modelserve"] = start("modelserve", service_tree, args.artifacts_dir, work)
            check_answers(servers, scenarios)
            for round_index in range(args.rounds):
                order = ("mlserver", "modelserve") if round_index % 2 == 0 else ("modelserve", "mlserver")
                for scenario in scenarios:
                    for side in order:
                        if side == "mlserver" and scenario.name not in BOTH:
                            continue
                        figures[scenario.name][side].append(measure(servers[side], scenario, wrk, work, args))
                print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        finally:
            for server in servers.values():
                stop(server)
    which = args.revision or "working tree"
    print(f"\nmodelserve ({which}) and MLServer, 1 process each; {args.rounds} rounds of {args.duration:g} s\n")
    print("| scenario | MLServer | modelserve | modelserve ÷ MLServer (median of rounds) |")
    print("|---|---:|---:|---:|")
    for scenario in scenarios:
        sides = figures[scenario.name]
        unit = "rows/s" if scenario.rows > 1 else "req/s"
        ours = f"{statistics.median(sides['modelserve']):,.0f} {unit}"
        if not sides["mlserver"]:
            print(f"| {scenario.name} | (no binary tensors) | {ours} | |")
            continue
        ratio = statistics.median(h / b for b, h in zip(sides["mlserver"], sides["modelserve"], strict=True))
        print(f"| {scenario.name} | {statistics.median(sides['mlserver']):,.0f} {unit} | {ours} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
