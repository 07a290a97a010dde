"""What a tabular model derives from its feature specs (contract.FeatureSpec): the request schema,
request instances → ONNX rows, and protocol tensors → the same matrix, with the same ranges and
categories everywhere, so the API cannot drift from the artifact contract that training writes.

Per row, everything runs in C where it can: msgspec validates, `attrgetter` + `map` gather the
columns, numpy turns `None` into NaN while building the matrix. Measured in-process on the 2-core
bench machine: a 1000-row heart batch ≈ 2.5 ms (decode + validate 0.5, matrix 0.85, ONNX 0.73, the
rest building and encoding the answer).

Protocol tensors → the matrix: service.models.tabular_tensors (the mixin TabularTensors).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Any, ClassVar, Literal

import msgspec
import numpy as np
from msgspec import Meta

from service.contract import FeatureSpec
from service.models import shapley
from service.models.base import ExplainPlan, Model, TensorOutput
from service.models.tabular_tensors import TabularTensors, derive_tensors

# What an absent nullable field decodes to (an explicit null decodes to None). Both are missing (NaN in the
# matrix), but only ABSENT says the key was not there: read_matrix counts it for service.api.repeated_keys
# (the keys a body held) in one vectorised pass, then makes it NaN. -inf, which no valid value can be (every
# number has bounds, JSON has no infinity, categories are literals), so numpy keeps it apart from None.
ABSENT = float("-inf")


def _feature_type(spec: FeatureSpec, example: Any) -> Any:
    """The msgspec type of one feature: a bounded number or a literal set of category values."""
    if spec.kind == "number":
        unit = f" ({spec.unit})" if spec.unit else ""
        meta = Meta(ge=spec.minimum, le=spec.maximum, description=f"{spec.description}{unit}", examples=[example])
        kind: Any = Annotated[int if spec.integer else float, meta]
    else:
        meanings = ", ".join(f"{v!r} {m}" for v, m in zip(spec.categories, spec.meanings, strict=True))
        meta = Meta(description=f"{spec.description}: {meanings}", examples=[example])
        kind = Annotated[Literal[spec.categories], meta]  # type: ignore[valid-type]
    return kind | None if spec.nullable else kind


def request_struct(name: str, features: tuple[FeatureSpec, ...], example: dict[str, Any]) -> type[msgspec.Struct]:
    """One instance: every feature a keyword; the nullable ones may be null or absent; no unknown fields."""
    fields = [
        (s.name, _feature_type(s, example[s.name]), ABSENT)
        if s.nullable
        else (s.name, _feature_type(s, example[s.name]))
        for s in features
    ]
    required = ", ".join(f"`{s.name}`" for s in features if not s.nullable)
    cls = msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=True, module=__name__)
    cls.__doc__ = (
        f"One instance. {required} are required; any other field may be null or absent and is then "
        "treated as missing (listed in the response's `missing`). Unknown fields are rejected."
    )
    return cls


class ShapleyExplanation(msgspec.Struct):
    """Why this answer: exact Shapley values of the served graph's probability (`?explain=true`)."""

    method: Annotated[
        Literal["shapley"],
        Meta(
            description="exact interventional Shapley values of the served ONNX graph's output against the "
            "background rows of the version's background.json: v(S) = mean over background rows b of f(x_S, b_rest)"
        ),
    ]
    unit: Annotated[Literal["probability"], Meta(description="contributions and base are in probability")]
    base: Annotated[float, Meta(description="the mean output over the background rows")]
    contributions: Annotated[
        dict[str, float],
        Meta(
            description="one per feature; they add up to the answer minus `base`. A missing feature counts as "
            "the value the graph makes of a missing one (its imputation and missing indicator), so its "
            "contribution is the effect of being missing against the background's values: not zero"
        ),
    ]


class _MissingNames(dict[int, list[str]]):
    """Bit pattern of missing features (bit i ⇔ feature i) → their names, made on first sight.
    A dict subclass, so that `map(names.__getitem__, patterns)` stays in C for patterns seen before."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__()
        self.names = names

    def __missing__(self, bits: int) -> list[str]:
        names = self[bits] = [self.names[i] for i in range(len(self.names)) if bits >> i & 1]
        return names


class TabularModel(TabularTensors, Model):
    """A model over named features (contract.FeatureSpec), one ONNX column each, in the specs' order."""

    features: ClassVar[tuple[FeatureSpec, ...]]
    example: ClassVar[dict[str, Any]]  # one valid instance (OpenAPI, docs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "features" in cls.__dict__:
            _derive(cls)

    def check_manifest(self, manifest: Any) -> None:
        super().check_manifest(manifest)
        if manifest.inputs.features != [spec.to_manifest() for spec in self.features]:
            raise self.refuse(
                f"inputs.features differ from the service's {self.name} schema (names, order, ranges or codes)"
            )

    # ---- request instances ---------------------------------------------------------------------

    def row(self, item: Any, path: str) -> list[float | None]:
        return self.read_row(item, path)[0]

    def read_row(self, item: Any, path: str) -> tuple[list[float | None], int]:
        values = self._values(item)
        absent = values.count(ABSENT)
        row: list[Any] = [None if v is ABSENT else v for v in values] if absent else list(values)
        for column, _, table in self._mapped:
            row[column] = table[row[column]]
        return row, len(values) - absent

    def matrix(self, items: list[Any]) -> np.ndarray:
        return self.read_matrix(items)[0]

    def read_matrix(self, items: list[Any]) -> tuple[np.ndarray, int]:
        """The matrix, and the keys given: every cell but the absent ones (ABSENT, -inf until counted)."""
        matrix = np.empty((len(items), len(self.features)), dtype=np.float32)
        matrix[:, self._direct] = np.array(list(map(self._direct_values, items)), dtype=np.float32)
        for column, getter, table in self._mapped:
            matrix[:, column] = np.array(list(map(table.__getitem__, map(getter, items))), dtype=np.float32)
        absent = np.isneginf(matrix)
        count = int(np.count_nonzero(absent))
        if count:
            matrix[absent] = np.nan
        return matrix, matrix.size - count

    def missing_names(self, matrix: np.ndarray) -> list[list[str]]:
        """Per row, the names of the missing features (in the features' order)."""
        return list(map(self._missing_names.__getitem__, (np.isnan(matrix) @ self._bits).tolist()))

    # ---- explanations ------------------------------------------------------------------------

    def _explain_plan(self, matrix: np.ndarray, outputs: np.ndarray, decisions: np.ndarray) -> ExplainPlan:
        assert self.background is not None and self.background_outputs is not None  # explain_plan checked
        coalitions = shapley.plan(matrix, self.background)
        base = float(self.scores(self.background_outputs).astype(np.float64).mean())
        names = [spec.name for spec in self.features]

        def finish(coalition_outputs: np.ndarray) -> list[ShapleyExplanation]:
            phi = coalitions.contributions(self.scores(coalition_outputs))
            return [
                ShapleyExplanation("shapley", "probability", base, dict(zip(names, row, strict=True)))
                for row in phi.tolist()
            ]

        return ExplainPlan(coalitions.rows, finish)

    def explanation_output(self) -> TensorOutput | None:
        if self.explained_types is None:
            return None
        return TensorOutput("contributions", "FP64", (len(self.features),))  # Shapley values, the inputs' order

    def explanation_tensor(self, explanations: list[Any]) -> tuple[list[int], list[float]]:
        values = [value for explanation in explanations for value in explanation.contributions.values()]
        return [len(explanations), len(self.features)], values


def _derive(cls: type[TabularModel]) -> None:
    """Everything the request path needs, computed once per class from its feature specs."""
    features = cls.features
    names = tuple(spec.name for spec in features)
    cls.input_width = len(features)
    cls.counted_missing = names
    cls.drift_columns = names  # every feature's distribution is watched (drift_values: the matrix itself)
    cls.choices = {s.name: ", ".join(repr(v) for v in s.categories) for s in features if s.kind == "category"}
    cls._values = attrgetter(*names)
    # Columns whose API value is already the ONNX code go into the matrix as they are; the others (text
    # categories) through a table. None stays None, and numpy makes it NaN.
    direct = [i for i, s in enumerate(features) if s.kind == "number" or s.codes == tuple(s.categories)]
    cls._direct = direct
    cls._direct_values = attrgetter(*(names[i] for i in direct))
    cls._mapped = [
        (i, attrgetter(names[i]), {**dict(zip(s.categories, s.codes, strict=True)), None: None, ABSENT: ABSENT})
        for i, s in enumerate(features)
        if i not in direct
    ]
    cls._bits = (1 << np.arange(len(features))).astype(np.int64)
    cls._missing_names = _MissingNames(names)
    derive_tensors(cls, features)
