"""`python -m bench.ab --base REV`: the service at REV against the working tree, in one run, interleaved.

Why: on a shared 2-core machine two `make bench` runs minutes apart differ by ±20 % (measured here on
2026-11-28: the same commit gave 5,718 and 7,414 single heart requests/s in consecutive runs), which hides
the few per cent a change on the prediction path costs or saves. Here both versions run at once, each as
`python -m service` with one worker from its own tree (REV in a temporary `git worktree`), over the same
artifacts; every round measures each scenario on both, alternating which goes first, so drift in the
machine's speed hits both alike. The figure to read is the median over rounds of head ÷ base.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.payloads import build_payloads
from bench.processes import Server, free_port, start_server, stop, wait_ready
from bench.runner import service_env
from bench.scenarios import Scenario, service_scenarios
from bench.wrk import find_wrk, lua_script, run_wrk

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--base", required=True, help="the git revision to compare the working tree against")
    parser.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"))
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every scenario on both (5)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated (default: health,heart,heart_batch; with --cost: every scenario of COST_BURSTS)",
    )
    parser.add_argument(
        "--base-artifacts-dir",
        type=Path,
        default=None,
        help="the base side's artifacts (default: --artifacts-dir); with --base HEAD, compares two builds of the "
        "artifacts on the same code (e.g. a manifest without `drift`: the cost of drift counting)",
    )
    parser.add_argument(
        "--cost",
        action="store_true",
        help="instead of wrk against servers: CPU µs per request in-process (bench/asgi_cost.py), alternating",
    )
    return parser.parse_args(argv)


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """REV checked out in a temporary directory (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as parent:
        path = Path(parent) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), revision], cwd=ROOT, check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def start(name: str, tree: Path, artifacts: Path, log_dir: Path, extra: dict[str, str] | None = None) -> Server:
    """`python -m service` from `tree`, one worker, ready (stopped again if it never is); `extra`: more
    SERVICE_* settings."""
    port = free_port()
    env = service_env(artifacts, port, extra or {})
    server = start_server(name, [sys.executable, "-m", "service"], env, port, log_dir / f"{name}.log", cwd=tree)
    try:
        wait_ready(server, time.perf_counter(), "/health/ready", 120.0)
    except BaseException:
        stop(server)
        raise
    return server


def measure(server: Server, scenario: Scenario, wrk: str, work: Path, args: argparse.Namespace) -> float:
    """Requests/s (or rows/s for batches) of one wrk run after a 1-second warm-up."""
    url = f"http://127.0.0.1:{server.port}{scenario.path}"
    script = lua_script(scenario.method, scenario.body, scenario.content_type, scenario.headers)
    common: dict[str, Any] = {"connections": args.connections, "threads": 1}
    run_wrk(wrk, url, script, work, f"{server.name}-{scenario.name}-warm", duration_s=1, **common)
    result, _ = run_wrk(wrk, url, script, work, f"{server.name}-{scenario.name}", duration_s=args.duration, **common)
    return result.requests_per_s * scenario.rows


def summarise(figures: dict[str, dict[str, list[float]]], ratios_shown: int = 20) -> list[str]:
    """A Markdown table: per scenario, each side's median and the median of the per-round ratios."""
    lines = [
        "| scenario | base median | head median | head ÷ base (median of rounds) | per-round ratios |",
        "|---|---:|---:|---:|---|",
    ]
    for name, sides in figures.items():
        ratios = [head / base for base, head in zip(sides["base"], sides["head"], strict=True) if base]
        lines.append(
            f"| {name} | {statistics.median(sides['base']):,.0f} | {statistics.median(sides['head']):,.0f} | "
            f"{statistics.median(ratios):.3f} | {', '.join(f'{r:.3f}' for r in ratios[:ratios_shown])} |"
        )
    return lines


class CostWorker:
    """bench/asgi_cost.py serving one tree's app in-process, measuring bursts on command."""

    def __init__(self, tree: Path, artifacts: Path) -> None:
        script = ROOT / "bench" / "asgi_cost.py"
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(artifacts.resolve())],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._line() != "ready":
            raise RuntimeError(f"the cost worker for {tree} did not start")

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def burst(self, scenario: str, requests: int) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{scenario} {requests}\n")
        self.process.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


# requests per burst: ≈ 0.05-0.1 s each
COST_BURSTS = {
    "health": 2000,
    "heart": 500,
    "heart_x32": 1024,
    "heart_batch": 10,
    "heart_batch_nulls": 10,
    "v2_heart": 300,
    "v2_heart_x32": 640,
    "v2_heart_binary": 300,
    "v2_heart_binary_x32": 640,
    "v2_heart_batch": 10,
    "v2_heart_batch_binary": 20,
}


def compare_cost(args: argparse.Namespace) -> int:
    """CPU µs per request of base and head in alternating bursts (a fraction of a second each, so both see
    the same machine); lower is better, so the table shows requests per CPU-second and head ÷ base."""
    wanted = args.scenarios.split(",") if args.scenarios else list(COST_BURSTS)
    bursts = {name: requests for name, requests in COST_BURSTS.items() if name in wanted}
    figures: dict[str, dict[str, list[float]]] = {name: {"base": [], "head": []} for name in bursts}
    with worktree(args.base) as base_tree:
        base_artifacts = args.base_artifacts_dir or args.artifacts_dir
        workers = {"base": CostWorker(base_tree, base_artifacts), "head": CostWorker(ROOT, args.artifacts_dir)}
        try:
            for round_index in range(args.rounds * 10):
                order = ("base", "head") if round_index % 2 == 0 else ("head", "base")
                for name, requests in bursts.items():
                    for side in order:
                        figures[name][side].append(1e6 / workers[side].burst(name, requests))
        finally:
            for worker in workers.values():
                worker.close()
    print(f"\nbase {args.base} against the working tree: requests per CPU-second in-process")
    print(f"({args.rounds * 10} alternating bursts per scenario; no server, no sockets: the project's own code)\n")
    print("\n".join(summarise(figures, ratios_shown=12)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cost:
        return compare_cost(args)
    wanted = (args.scenarios or "health,heart,heart_batch").split(",")
    wrk = find_wrk()
    payloads = build_payloads(args.artifacts_dir)
    scenarios = [s for s in service_scenarios(payloads) if s.name in wanted]
    figures: dict[str, dict[str, list[float]]] = {s.name: {"base": [], "head": []} for s in scenarios}
    with worktree(args.base) as base_tree, tempfile.TemporaryDirectory(prefix="bench-ab-run-") as work_dir:
        work = Path(work_dir)
        servers = {"base": start("base", base_tree, args.base_artifacts_dir or args.artifacts_dir, work)}
        try:
            servers["head"] = start("head", ROOT, args.artifacts_dir, work)
            for round_index in range(args.rounds):
                order = ("base", "head") if round_index % 2 == 0 else ("head", "base")
                for scenario in scenarios:
                    for side in order:
                        figures[scenario.name][side].append(measure(servers[side], scenario, wrk, work, args))
                print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        finally:
            for server in servers.values():
                stop(server)
    print(f"\nbase {args.base} against the working tree; {args.rounds} rounds of {args.duration:g} s, interleaved\n")
    print("\n".join(summarise(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
