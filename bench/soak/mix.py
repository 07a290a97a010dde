"""What the soak sends: the request kinds, their share of the traffic, and their bodies.

The mix stands for a service used both interactively and by batch jobs: most requests are single
predictions (a form or an app asking about one patient or one drawn digit), a minority are small
batches (a job scoring a page of records), which carry most of the rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.payloads import current_version_dir, reference_inputs, repeated_rows, to_json
from service.contract import HEART_EXAMPLE

BATCH_ROWS = 32
IMAGE_SCALE = 4  # an 8×8 digit drawn as a 32×32 grey image
SCHEDULE_LENGTH = 100


@dataclass(frozen=True)
class Kind:
    """One kind of request: route, share of the requests (percent), rows per request, bodies to cycle."""

    name: str
    path: str
    weight: int
    rows: int
    bodies: tuple[bytes, ...]


def pixels_to_image(pixels: list[float], scale: int = IMAGE_SCALE, invert: bool = False) -> list[list[int]]:
    """An 8×8 digit (counts 0..16) as a (8·scale)² grey image 0..255; `invert`: dark ink on white."""
    side = 8
    image = []
    for row in range(side * scale):
        line = []
        for col in range(side * scale):
            grey = round(pixels[(row // scale) * side + col // scale] * 255 / 16)
            line.append(255 - grey if invert else grey)
        image.append(line)
    return image


def build_kinds(artifacts_dir: Path, batch_rows: int = BATCH_ROWS, variants: int = 8) -> list[Kind]:
    """The five kinds, with bodies from the current versions' reference inputs (valid for any version
    of the same contract) and the tutorial patient."""
    heart_rows: list[dict[str, Any]] = reference_inputs(current_version_dir(artifacts_dir, "heart"))
    digit_rows = [r for r in reference_inputs(current_version_dir(artifacts_dir, "digits")) if "pixels" in r]
    if not digit_rows:
        raise ValueError("the digits reference.json has no `pixels` input")
    patients = [HEART_EXAMPLE, *heart_rows[: variants - 1]]
    digits = digit_rows[:variants]

    def batches(rows: list[dict[str, Any]]) -> tuple[bytes, ...]:
        return tuple(
            to_json({"instances": repeated_rows(rows[i:] + rows[:i], batch_rows)}) for i in range(min(4, len(rows)))
        )

    return [
        Kind("heart", "/predict/heart", 40, 1, tuple(to_json(p) for p in patients)),
        Kind("digit_pixels", "/predict/digit", 25, 1, tuple(to_json({"pixels": d["pixels"]}) for d in digits)),
        Kind(
            "digit_image",
            "/predict/digit",
            10,
            1,
            tuple(to_json({"image": pixels_to_image(d["pixels"], invert=i % 2 == 1)}) for i, d in enumerate(digits)),
        ),
        Kind("heart_batch", "/predict/heart/batch", 15, batch_rows, batches(heart_rows)),
        Kind("digit_batch", "/predict/digit/batch", 10, batch_rows, batches(digit_rows)),
    ]


def schedule(kinds: list[Kind], seed: int, length: int = SCHEDULE_LENGTH) -> list[int]:
    """Indices into `kinds`, each appearing in proportion to its weight, in a seeded random order:
    a client cycling through it sends exactly the mix, without bursts of one kind."""
    total = sum(k.weight for k in kinds)
    if total <= 0:
        raise ValueError("the weights sum to zero")
    counts = [round(k.weight * length / total) for k in kinds]
    order = [index for index, count in enumerate(counts) for _ in range(count)]
    random.Random(seed).shuffle(order)
    return order


def http_request(method: str, path: str, host: str, body: bytes | None, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")
