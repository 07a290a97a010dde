"""`python -m bench --artifacts-dir artifacts`: the figures of the issue's Performance section.

See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.payloads import Payloads, build_payloads
from bench.processes import free_port, python_command
from bench.report import build_report, machine_facts, render_markdown, write_report
from bench.runner import ServerRun, bench_server, service_env
from bench.scenarios import LoadSettings, service_scenarios, tutorial_scenarios
from bench.wrk import WrkError, find_wrk, wrk_version


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark the service with wrk.")
    parser.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"))
    parser.add_argument("--results-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured scenario (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each (2; 0: none)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: the server gets the other core)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before each measured run, wait up to this long for other processes to use < 10%% of a core (30)",
    )
    parser.add_argument(
        "--busy-retries",
        type=int,
        default=2,
        help="measure a scenario again, at most this often, if other processes used > 10%% of a core (2)",
    )
    parser.add_argument("--batch-rows", type=int, default=1000, help="rows per batch request (1000)")
    parser.add_argument(
        "--service-command",
        default="-m service",
        help="arguments to the venv's python that start the service ('-m service')",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service, e.g. a server choice; repeatable",
    )
    parser.add_argument("--no-service", action="store_true", help="skip the service (baseline only)")
    parser.add_argument("--no-tutorial", action="store_true", help="skip the tutorial-recipe baseline")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    for item in args.service_env:
        if "=" not in item:
            parser.error(f"--service-env wants KEY=VALUE, got {item!r}")
    return args


def run_servers(
    args: argparse.Namespace, wrk: str, payloads: Payloads, settings: LoadSettings, run_dir: Path
) -> dict[str, ServerRun]:
    """The service's scenarios, then the tutorial recipe's, one server at a time."""
    runs: dict[str, ServerRun] = {}
    overrides = dict(item.split("=", 1) for item in args.service_env)
    if not args.no_service:
        port, grpc_port = free_port(), free_port()
        env = service_env(args.artifacts_dir, port, {"SERVICE_GRPC_PORT": str(grpc_port), **overrides})
        command = python_command(*shlex.split(args.service_command))
        scenarios = service_scenarios(payloads, grpc_port)
        runs["service"] = bench_server("service", command, env, port, scenarios, wrk, settings, run_dir)
    if not args.no_tutorial:
        port = free_port()
        # The same server software as the service's (its SERVICE_SERVER, default granian).
        server = overrides.get("SERVICE_SERVER", "granian").lower()
        command = python_command(
            "-m",
            "bench.tutorial_app",
            "--artifacts-dir",
            str(args.artifacts_dir),
            "--port",
            str(port),
            "--server",
            server,
        )
        env = service_env(args.artifacts_dir, port, {})
        runs["tutorial"] = bench_server(
            "tutorial", command, env, port, tutorial_scenarios(payloads), wrk, settings, run_dir
        )
    return runs


def exit_status(report: dict[str, Any], strict: bool) -> int:
    """1 if a server or scenario failed or requests failed during a measured run (or, with --strict,
    a target was missed); else 0."""
    failures = {
        f"{server}: {name}": text
        for server in ("service", "tutorial")
        for name, text in report[server].get("failures", {}).items()
    }
    for name in failures:
        print(f"bench: {name} failed (see the report)", file=sys.stderr)
    errors = [s["title"] for s in report["scenarios"] if sum(s["errors"].values())]
    if errors:
        print(f"bench: requests failed during {', '.join(errors)}: those figures are not valid", file=sys.stderr)
    missed = strict and any(t["passed"] is False for t in report["targets"])
    return 1 if failures or errors or missed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        wrk = find_wrk()
    except WrkError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        payloads = build_payloads(args.artifacts_dir, args.batch_rows)
    except (FileNotFoundError, ValueError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    settings = LoadSettings(
        args.duration, args.warmup, args.connections, args.threads, args.wait_quiet, args.busy_retries
    )
    run_dir = args.results_dir / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    runs = run_servers(args, wrk, payloads, settings, run_dir)
    report = build_report(
        [r for run in runs.values() for r in run.results],
        settings={
            **asdict(settings),
            "batch_rows": payloads.batch_rows,
            "load_generator": "wrk",
            "service_command": shlex.join(["python", *shlex.split(args.service_command)]),
            "service_env": args.service_env,
        },
        machine=machine_facts(wrk_version(wrk)),
        service=runs["service"].summary() if "service" in runs else {},
        tutorial=runs["tutorial"].summary() if "tutorial" in runs else {},
        artifacts={"heart": payloads.heart_version, "digits": payloads.digits_version},
    )
    json_path, md_path = write_report(report, run_dir, args.results_dir)
    print()
    print(render_markdown(report))
    print(f"Written: {json_path}, {md_path} (and {args.results_dir}/latest.*)")
    return exit_status(report, args.strict)


if __name__ == "__main__":
    sys.exit(main())
