"""The artifact contract: the one thing training (the writer) and the service (the reader) share.

Standard library and msgspec only, so that `training` can import it without pulling in the service's
dependencies, and the service can import it without torch. `Manifest` is the one typed description of
a version: training builds one and encodes it, the service decodes `manifest.json` into one, and the
bounds written here (a threshold within (0, 1], a sha256 of 64 hex digits, ...) are the only ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, structs

SCHEMA_VERSION = 1
MODEL_NAMES = ("heart", "digits")

CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "weights.pt"
PREPROCESS_FILE = "preprocess.joblib"
REFERENCE_FILE = "reference.json"
REPORT_DIR = "report"
# The explanations' background (optional: a version without it serves predictions, not explanations):
# {"rule": how training chose the rows, "columns": the ONNX input's columns, "rows": [[...], ...]}, the
# rows in model.onnx's input encoding, so that anyone can recompute an explanation from the two files.
BACKGROUND_FILE = "background.json"

# Files every version must list in its manifest (the report adds more).
REQUIRED_FILES = (ONNX_FILE, WEIGHTS_FILE, PREPROCESS_FILE, REFERENCE_FILE)

# Version names are also directory names: keep them to a safe alphabet.
VERSION_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature as the API takes it and as the ONNX graph receives it.

    The ONNX input is one float32 matrix: numbers as they are, categories as their `codes`
    (aligned with `categories`), and NaN for a missing value.
    """

    name: str
    kind: str  # "number" | "category"
    description: str
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Any, ...] = ()
    codes: tuple[float, ...] = ()
    nullable: bool = True
    unit: str | None = None
    integer: bool = False
    meanings: tuple[str, ...] = field(default=())

    def code_of(self, value: Any) -> float:
        """The ONNX code of an API value; raises KeyError for a value outside `categories`."""
        if self.kind != "category":
            return float(value)
        try:
            return self.codes[self.categories.index(value)]
        except ValueError:
            raise KeyError(f"{self.name}: {value!r} is not one of {list(self.categories)}") from None

    def to_manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "nullable": self.nullable,
        }
        if self.kind == "number":
            entry.update(minimum=self.minimum, maximum=self.maximum, unit=self.unit, integer=self.integer)
        else:
            entry.update(categories=list(self.categories), codes=list(self.codes), meanings=list(self.meanings))
        return entry


def _category(
    name: str,
    description: str,
    values: tuple[Any, ...],
    meanings: tuple[str, ...],
    *,
    codes: tuple[float, ...] | None = None,
    nullable: bool = True,
) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        kind="category",
        description=description,
        categories=values,
        codes=codes if codes is not None else tuple(float(v) for v in values),
        meanings=meanings,
        nullable=nullable,
    )


def _number(
    name: str,
    description: str,
    minimum: float,
    maximum: float,
    unit: str | None,
    *,
    integer: bool = False,
    nullable: bool = True,
) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        kind="number",
        description=description,
        minimum=minimum,
        maximum=maximum,
        unit=unit,
        integer=integer,
        nullable=nullable,
    )


# The canonical heart features, in the column order of the ONNX input. Ranges are what is
# physiologically possible, not what Cleveland happened to contain: a hospital's real record
# must pass. `thal` keeps the UCI codes (3, 6, 7) inside the graph.
HEART_FEATURES: tuple[FeatureSpec, ...] = (
    _number("age", "age", 1, 120, "years", nullable=False),
    _category("sex", "sex", (0, 1), ("female", "male"), nullable=False),
    _category(
        "cp", "chest-pain type", (1, 2, 3, 4), ("typical angina", "atypical angina", "non-anginal pain", "asymptomatic")
    ),
    _number("trestbps", "resting blood pressure", 50, 250, "mm Hg"),
    _number("chol", "serum cholesterol", 50, 700, "mg/dl"),
    _category("fbs", "fasting blood sugar > 120 mg/dl", (0, 1), ("false", "true")),
    _category("restecg", "resting ECG", (0, 1, 2), ("normal", "ST-T wave abnormality", "left-ventricular hypertrophy")),
    _number("thalach", "maximum heart rate achieved", 50, 250, "beats/min"),
    _category("exang", "exercise-induced angina", (0, 1), ("no", "yes")),
    _number("oldpeak", "ST depression induced by exercise relative to rest (negative: elevation)", -5, 10, "mm"),
    _category("slope", "slope of the peak exercise ST segment", (1, 2, 3), ("upsloping", "flat", "downsloping")),
    _number("ca", "major vessels coloured by fluoroscopy", 0, 3, "vessels", integer=True),
    _category(
        "thal",
        "thallium stress test",
        ("normal", "fixed", "reversible"),
        ("normal", "fixed defect", "reversible defect"),
        codes=(3.0, 6.0, 7.0),
    ),
)
HEART_FEATURE_NAMES = tuple(spec.name for spec in HEART_FEATURES)
HEART_LABELS = ("no disease", "disease")

DIGIT_SIDE = 8
DIGIT_PIXELS = DIGIT_SIDE * DIGIT_SIDE
DIGIT_MAX_VALUE = 16
DIGIT_LABELS = tuple(str(d) for d in range(10))

# ONNX tensor names and shapes, recorded in each manifest and checked by the service on load.
HEART_ONNX_INPUT = "features"
HEART_ONNX_OUTPUT = "probability"
DIGITS_ONNX_INPUT = "pixels"
DIGITS_ONNX_OUTPUT = "probabilities"


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so a large file costs no memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """The manifest's record of one file: its sha256 and size in bytes."""
    return {"sha256": sha256_file(path), "bytes": Path(path).stat().st_size}


def is_safe_version_name(name: str) -> bool:
    """A version name that cannot escape its model directory (no '/', no '..', no hidden names)."""
    return bool(name) and set(name) <= VERSION_ALPHABET and not name.startswith(".")


# The tutorial's example patient: the OpenAPI example and a row of every heart reference file.
HEART_EXAMPLE: dict[str, Any] = {
    "age": 80,
    "sex": 0,
    "cp": 1,
    "trestbps": 124,
    "chol": 300,
    "fbs": 1,
    "restecg": 2,
    "thalach": 150,
    "exang": 0,
    "oldpeak": 2.3,
    "slope": 3,
    "ca": 0,
    "thal": "fixed",
}


# ---- the manifest, typed -------------------------------------------------------------------------

Sha256 = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="hex sha256")]


class FileEntry(Struct, forbid_unknown_fields=True):
    """One file of a version (path relative to the version directory, POSIX separators)."""

    sha256: Sha256
    bytes: Annotated[int, Meta(ge=0)]


class TensorSpec(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The ONNX graph's input or output: one float32 tensor whose first dimension is the batch (-1)."""

    name: Annotated[str, Meta(min_length=1)]
    # Required, not defaulted: omit_defaults would leave a default dtype out of the written manifest.
    dtype: Literal["float32"]
    shape: Annotated[list[int], Meta(min_length=1)]
    encoding: str | None = None  # inputs: how API values become columns
    meaning: str | None = None  # outputs: what the numbers are


class PixelSpec(Struct, forbid_unknown_fields=True):
    """An image model's input: `count` values of `side`×`side` pixels within minimum..maximum."""

    count: int
    minimum: float
    maximum: float
    side: int


class ModelInputs(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    onnx: TensorSpec
    features: list[dict[str, Any]] | None = None  # tabular models: FeatureSpec.to_manifest() per column
    pixels: PixelSpec | None = None  # image models


class ModelOutputs(Struct, forbid_unknown_fields=True):
    onnx: TensorSpec


class DriftColumn(Struct, kw_only=True, forbid_unknown_fields=True):
    """One monitored column (a feature, or a statistic of the input): its buckets and the training split's
    share in each. Bucket i holds edges[i-1] < v <= edges[i]; the first and last are open-ended; a missing
    value is counted apart (`missing`). `shares` and `missing` add up to 1 (service.drift computes them)."""

    name: Annotated[str, Meta(min_length=1)]
    kind: Literal["number", "category"]
    edges: list[float]  # sorted, strictly increasing; float32 values
    buckets: Annotated[list[str], Meta(min_length=1)]  # len(edges) + 1 names (a number's range, a category)
    shares: list[Annotated[float, Meta(ge=0, le=1)]]
    missing: Annotated[float, Meta(ge=0, le=1)]

    def problem(self) -> str | None:
        """What makes the column unusable, or None. (Not a __post_init__: OpenAPI example generation
        builds random instances of the structs it documents.)"""
        if not len(self.buckets) == len(self.edges) + 1 == len(self.shares):
            return f"drift column {self.name!r}: needs len(edges) + 1 buckets and as many shares"
        if any(low >= high for low, high in zip(self.edges, self.edges[1:], strict=False)):
            return f"drift column {self.name!r}: edges must increase strictly"
        return None


class Drift(Struct, kw_only=True, forbid_unknown_fields=True):
    """The reference distributions the service's input-drift metrics compare live traffic with."""

    source: str  # which rows the shares describe ("training split")
    rows: Annotated[int, Meta(ge=1)]
    columns: list[DriftColumn]


def is_threshold_override(value: float) -> bool:
    """A request's own decision threshold: strictly between 0 and 1 (0 or 1 would decide every row the
    same way). False for NaN and infinities too. Every protocol checks overrides with this."""
    return 0 < value < 1


class SweepPoint(Struct, forbid_unknown_fields=True):
    """One threshold of a binary model's sweep on out-of-fold probabilities (never rows a model trained on)."""

    threshold: Annotated[float, Meta(gt=0, lt=1)]
    sensitivity: Annotated[float, Meta(ge=0, le=1)]
    specificity: Annotated[float, Meta(ge=0, le=1)]


class Threshold(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The decision threshold (binary models) or minimum confidence (multiclass), and how it was chosen.

    One set of bounds for every model: above 0 (a threshold of 0 would decide nothing) and at most 1
    (a minimum confidence of 1 marks every answer not confident, which is a legitimate outcome)."""

    value: Annotated[float, Meta(gt=0, le=1)]
    rule: str
    expected_cost_per_patient: float | None = None  # heart: the cost the chosen threshold minimises
    coverage: float | None = None  # digits: the share of out-of-fold answers at or above it
    # digits: null when no out-of-fold answer reached `value`; UNSET (left out) for models without it
    accuracy_when_confident: float | UnsetType | None = UNSET
    # heart: sensitivity and specificity at each threshold of the grid the rule searched (the web page's slider)
    sweep: list[SweepPoint] | None = None


class Manifest(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """`manifest.json`: what a version is, how it was made, how well it did, and every file's checksum."""

    schema_version: int
    name: Annotated[str, Meta(pattern="^[a-z][a-z0-9_]*$")]
    version: Annotated[str, Meta(pattern="^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    created_at: str
    git_commit: str | None
    seed: int
    data: dict[str, Any]
    config: dict[str, Any]
    libraries: dict[str, str]
    inputs: ModelInputs
    outputs: ModelOutputs
    labels: Annotated[list[str], Meta(min_length=1)]
    threshold: Threshold
    metrics: dict[str, Any]
    # Input drift references (service.drift); absent for versions built before drift monitoring existed.
    drift: Drift | None = None
    files: dict[str, FileEntry]
    task: Literal["binary", "multiclass"] | None = None
    architecture: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    # How `?explain=true` explains this version: {"file", "rule", "rows", "method", "unit"} (see
    # BACKGROUND_FILE); absent for versions built before explanations existed.
    explanation: dict[str, Any] | None = None


# The keys every manifest has (the rest are optional).
REQUIRED_MANIFEST_KEYS = tuple(f.name for f in structs.fields(Manifest) if f.required)
