"""Digits that no model here trained on: hand-made stroke paths and digits rendered from fonts.

sklearn's digits (the training data) are 8×8 counts of 32×32 bitmaps written by 43 people in the
1990s. These are something else: strokes as a finger or mouse draws them on the page's canvas, and
glyphs of the fonts matplotlib ships, in several sizes, stroke widths, slants and positions. The
browser tests draw STROKES with the mouse; `python -m tests.web.glyphs ARTIFACT_DIR` measures the
image path (service.image + the served ONNX graph) on all of them and prints the accuracy per source.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

Point = tuple[float, float]
Stroke = list[Point]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, steps: int = 24) -> Stroke:
    """Points of an elliptic arc; angles in degrees, y pointing down (-90 is the top)."""
    angles = np.radians(np.linspace(start, end, steps))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Each digit as strokes in a unit box (x right, y down), the way people commonly write it.
STROKES: dict[int, list[Stroke]] = {
    0: [arc(0.5, 0.5, 0.3, 0.45, -90, 270, 40)],
    1: [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    2: [[*arc(0.5, 0.3, 0.27, 0.25, -165, 30), (0.18, 0.95), (0.85, 0.95)]],
    3: [[*arc(0.48, 0.27, 0.24, 0.22, -160, 90), *arc(0.48, 0.72, 0.27, 0.23, -90, 155)]],
    4: [[(0.62, 0.05), (0.15, 0.65), (0.88, 0.65)], [(0.62, 0.05), (0.62, 0.95)]],
    5: [[(0.8, 0.05), (0.28, 0.05), (0.24, 0.45), *arc(0.5, 0.67, 0.3, 0.28, -130, 150)]],
    6: [[(0.72, 0.05), (0.42, 0.25), *arc(0.5, 0.7, 0.27, 0.25, 180, 540, 40)]],
    7: [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
    8: [arc(0.5, 0.27, 0.21, 0.22, 90, 450, 36), arc(0.5, 0.72, 0.26, 0.23, -90, 270, 36)],
    9: [arc(0.5, 0.3, 0.25, 0.25, 0, 360, 36), [(0.75, 0.3), (0.72, 0.95)]],
}

# (size as a share of the canvas, centre x, centre y, line width in canvas pixels of 280)
DRAWINGS = [
    (0.8, 0.5, 0.5, 18),
    (0.55, 0.4, 0.45, 10),
    (0.9, 0.5, 0.52, 30),
    (0.45, 0.62, 0.6, 14),
]


def placed(digit: int, size: float, cx: float, cy: float, side: float, slant: float = 0.0) -> list[Stroke]:
    """The digit's strokes in canvas pixels: `size` of the canvas high, 0.7 of that wide, centred at
    (cx, cy) as shares of the canvas; `slant` shears x by that share of the height above the centre."""
    height, width = size * side, 0.7 * size * side
    return [
        [
            (cx * side + (x - 0.5) * width - slant * (y - 0.5) * height, cy * side + (y - 0.5) * height)
            for x, y in stroke
        ]
        for stroke in STROKES[digit]
    ]


def stroke_images(side: int = 280) -> Iterator[tuple[str, int, np.ndarray]]:
    """The stroke paths drawn with round pens, in every DRAWING and three slants."""
    from PIL import Image, ImageDraw

    for digit in STROKES:
        for size, cx, cy, width in DRAWINGS:
            for slant in (0.0, 0.2, -0.1):
                image = Image.new("L", (side, side), 255)
                pen = ImageDraw.Draw(image)
                for stroke in placed(digit, size, cx, cy, side, slant):
                    pen.line(stroke, fill=0, width=width, joint="curve")
                    for x, y in (stroke[0], stroke[-1]):  # round caps, as the canvas draws them
                        pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=0)
                yield "strokes", digit, np.asarray(image, dtype=np.float64)


def font_files() -> list[Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    names = ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSansMono", "DejaVuSerif",
             "DejaVuSerif-Italic", "STIXGeneral", "STIXGeneralItalic", "cmr10", "cmss10", "cmtt10"]  # fmt: skip
    return [folder / f"{name}.ttf" for name in names if (folder / f"{name}.ttf").exists()]


def font_images(side: int = 200) -> Iterator[tuple[str, int, np.ndarray]]:
    """Each digit in each font, at two sizes, three stroke widths (outline thickening) and two slants."""
    from PIL import Image, ImageDraw, ImageFont

    for path in font_files():
        for size in (90, 150):
            font = ImageFont.truetype(str(path), size)
            for thickness in (0, 3, 7):
                for slant in (0.0, 0.25):
                    for digit in range(10):
                        image = Image.new("L", (side, side), 255)
                        ImageDraw.Draw(image).text(
                            (side / 2, side / 2), str(digit), font=font, fill=0, anchor="mm",
                            stroke_width=thickness, stroke_fill=0,
                        )  # fmt: skip
                        if slant:
                            image = image.transform(
                                image.size,
                                Image.Transform.AFFINE,
                                (1, slant, -slant * side / 2, 0, 1, 0),
                                fillcolor=255,
                            )
                        yield f"font {path.stem}", digit, np.asarray(image, dtype=np.float64)


def measure(version_dir: Path) -> dict[str, tuple[int, int, int, int]]:
    """source → (right, total, flagged, right among the un-flagged) for the image path of the service
    over every image here; an answer is flagged "not confident" below the manifest's minimum confidence."""
    import json

    import onnxruntime

    from service.image import image_to_pixels

    min_confidence = json.loads((version_dir / "manifest.json").read_text())["threshold"]["value"]
    session = onnxruntime.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    results: dict[str, list[int]] = {}
    for source, digit, image in [*stroke_images(), *font_images()]:
        pixels = image_to_pixels(image).astype(np.float32)[None, :]
        probabilities = session.run(None, {name: pixels})[0][0]
        right, flagged = int(probabilities.argmax()) == digit, float(probabilities.max()) < min_confidence
        kind = "fonts" if source.startswith("font") else source
        for key in {source, kind}:  # a set: the strokes are their own kind, counted once
            tally = results.setdefault(key, [0, 0, 0, 0])
            tally[0] += right
            tally[1] += 1
            tally[2] += flagged
            tally[3] += right and not flagged
    return {key: (right, total, flagged, kept_right) for key, (right, total, flagged, kept_right) in results.items()}


if __name__ == "__main__":
    model_dir = Path(sys.argv[1])
    version = model_dir / (model_dir / "CURRENT").read_text().strip() if (model_dir / "CURRENT").exists() else model_dir
    print(f"{'source':<28} {'read right':>15}   {'flagged':>7}   un-flagged read right")
    for key, (right, total, flagged, kept_right) in sorted(measure(version).items()):
        kept = total - flagged
        print(
            f"{key:<28} {right:>4}/{total:<4} {right / total:>6.1%}   {flagged / total:>7.1%}   "
            f"{kept_right:>4}/{kept:<4} {kept_right / max(kept, 1):.1%}"
        )
