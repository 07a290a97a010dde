"""`python -m training`: train, evaluate, export and publish the artifacts."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from training.config import RunConfig, small
from training.data import DataError
from training.pipeline import run, summary
from training.tasks import TASKS


def parse_args(argv: list[str] | None = None) -> RunConfig:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        default=Path("artifacts"),
        help="where <model>/<version>/ is written (default: artifacts)",
    )
    parser.add_argument("--models", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument(
        "--heart-csv",
        type=Path,
        default=None,
        help="train the heart model on your own CSV with the canonical columns and `target`",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for splits, weights and shuffling")
    parser.add_argument("--small", action="store_true", help="a fast configuration (tests, smoke runs)")
    parser.add_argument("--no-report", action="store_true", help="skip the model card and plots")
    args = parser.parse_args(argv)
    config = RunConfig(
        artifacts_dir=args.artifacts_dir, models=tuple(args.models), heart_csv=args.heart_csv, report=not args.no_report
    )
    if args.small:
        config = small(config)
    if args.seed is not None:
        config = replace(
            config, heart=replace(config.heart, seed=args.seed), digits=replace(config.digits, seed=args.seed)
        )
    return config


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    started = time.perf_counter()
    try:
        built = run(config)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nbuilt {len(built)} artifact(s) in {time.perf_counter() - started:.1f} s")
    for version_dir in built.values():
        print("\n".join(summary(version_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
