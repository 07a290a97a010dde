"""`python -m bench.soak --artifacts-dir artifacts --seconds 60`: the soak of `make soak`.

Exit status: 0 when every required check held (zero failed requests, every reload succeeded, every
worker answered and ended on the final version, no worker restarted); 1 otherwise, or with
`--strict` when a worker's memory grew by 5 % or more after warm-up; 2 if the artifacts are missing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.soak.report import build_report, render_markdown, write_report
from bench.soak.run import SoakSettings, run_soak


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"), help="only read (copied)")
    parser.add_argument("--results-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load (60)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (64)")
    parser.add_argument("--workers", type=int, default=2, help="SERVICE_WORKERS (2)")
    parser.add_argument(
        "--reload-every", type=float, default=5.0, help="seconds between hot reloads (5; 0: no reloads)"
    )
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="stop after this many (2,000,000)")
    parser.add_argument("--batch-rows", type=int, default=32, help="rows per batch request (32)")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service, e.g. MALLOC_ARENA_MAX=2; repeatable",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if the memory target is missed")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.workers < 1 or args.reload_every < 0:
        parser.error("--seconds, --clients and --workers must be positive, --reload-every not negative")
    if any("=" not in item for item in args.service_env):
        parser.error("--service-env wants KEY=VALUE")
    return args


def settings_from(args: argparse.Namespace) -> SoakSettings:
    return SoakSettings(
        artifacts_dir=args.artifacts_dir,
        results_dir=args.results_dir,
        duration_s=args.seconds,
        clients=args.clients,
        workers=args.workers,
        reload_every_s=args.reload_every,
        max_requests=args.max_requests,
        batch_rows=args.batch_rows,
        service_env=dict(item.split("=", 1) for item in args.service_env),
    )


def exit_status(report: dict[str, Any], strict: bool) -> int:
    """0 if every required check passed (and, with `strict`, the memory target too), else 1."""
    failed = [c["name"] for c in report["checks"] if not c["passed"] and (c["required"] or strict)]
    for name in failed:
        print(f"soak: FAILED: {name}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    for model in ("heart", "digits"):
        if not (settings.artifacts_dir / model / "CURRENT").is_file():
            print(f"soak: {settings.artifacts_dir}/{model}/CURRENT is missing: run `make train`", file=sys.stderr)
            return 2
    try:
        run = run_soak(settings)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:  # no second version, or no service
        print(f"soak: {error}", file=sys.stderr)
        return 1
    report = build_report(run)
    json_path, md_path = write_report(report, settings.results_dir)
    print()
    print(render_markdown(report))
    print(f"Written: {md_path}, {json_path}")
    return exit_status(report, args.strict)


if __name__ == "__main__":
    sys.exit(main())
