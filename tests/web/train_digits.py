"""A digits model for the browser tests: the full network, fewer folds and epochs (about a minute).

The small configuration of the other tests (6 epochs, narrow network) reads only about 80 % of sklearn's
own test digits, too few for a test that the page reads drawn digits right; the full configuration
(5 folds × 3 members) takes several minutes. `python -m tests.web.train_digits ARTIFACTS_DIR`.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from training.config import RunConfig
from training.pipeline import run


def main(artifacts_dir: Path) -> None:
    base = RunConfig(artifacts_dir=artifacts_dir, models=("digits",))
    digits = replace(
        base.digits,
        ensemble=1,
        cv_splits=2,
        optim=replace(base.digits.optim, max_epochs=25, patience=6),
        redraw=replace(base.digits.redraw, views=3),  # half the redrawing time; the strokes are read as well
    )
    run(replace(base, digits=digits))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
