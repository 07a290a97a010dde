"""A tabular model's protocol tensors (the Open Inference Protocol, REST and gRPC) → its ONNX matrix, with
the ranges and categories of its feature specs: the mixin `TabularTensors` and what `derive_tensors` computes
for it once per class.

Each feature is its own input, of shape [N, 1] or [N]; numbers and numeric categories as FP32, FP64 or
INT64 (whole numbers where the feature is integer or a category), text categories as BYTES; `null` in
`data`, or the whole input left out, is missing. `tensor_matrix` checks the columns all at once (a handful
of numpy operations whatever the number of inputs); only on failure is the first offending value looked
up. `tensor_row` makes the same checks one value at a time for a single row, where numpy's fixed costs
would dominate (service.api.v2.single); it only accepts, and leaves every refusal to `tensor_matrix`.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, ClassVar

import numpy as np

from service.contract import FeatureSpec
from service.errors import ServiceError
from service.models.base import TensorInput, TensorOutput
from service.models.tensors import NUMERIC, Categorical, first, show

_SHAPES = ((1,), ())  # [N, 1] or [N]
_BAD = float("inf")  # a text category's "not a category": outside every range
# tensor_row's values are decoded JSON, struct-unpacked bytes or protobuf contents: of these exact types
_NOT_NUMBERS = frozenset({str, bool})


def _is_text(spec: FeatureSpec) -> bool:
    return spec.kind == "category" and any(isinstance(value, str) for value in spec.categories)


def _bounds(spec: FeatureSpec) -> tuple[float, float]:
    if spec.kind == "number":
        return float(spec.minimum), float(spec.maximum)  # type: ignore[arg-type]
    return min(spec.codes), max(spec.codes)


def _float32_bounds(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 bounds that a float32 value is within exactly when it is within the float64 ones: the least
    float32 not below each low, the greatest not above each high. Comparing float32 columns with float64
    bounds converts the whole matrix for each comparison (~37 µs of a 1000-row heart matrix's checks)."""
    with np.errstate(over="ignore"):  # a bound beyond float32 becomes ±inf, which no finite float32 passes
        low32, high32 = low.astype(np.float32), high.astype(np.float32)  # to nearest: either side of the bound
        low32 = np.where(low32 < low, np.nextafter(low32, np.float32(np.inf)), low32)
        high32 = np.where(high32 > high, np.nextafter(high32, np.float32(-np.inf)), high32)
    return low32, high32


class TabularTensors:
    """Model.tensor_matrix and Model.tensor_row for a model over named features, one ONNX column each."""

    features: ClassVar[tuple[FeatureSpec, ...]]
    # Set by derive_tensors, per column: the text → code tables, the bounds, whether values must be whole
    # (integer numbers and numeric categories), whether null is allowed; and tensor_row's checks.
    _index: ClassVar[dict[str, int]]
    _tables: ClassVar[dict[int, dict[Any, float]]]
    _low: ClassVar[np.ndarray]
    _high: ClassVar[np.ndarray]
    _low32: ClassVar[np.ndarray]  # the same bounds for float32 values (see _float32_bounds)
    _high32: ClassVar[np.ndarray]
    _whole: ClassVar[np.ndarray]
    _whole_rows: ClassVar[np.ndarray]
    _nullable: ClassVar[np.ndarray]
    _sparse: ClassVar[list[int]]
    _row_checks: ClassVar[list[tuple[Any, ...]]]
    tensor_outputs: ClassVar[tuple[TensorOutput, ...]]  # the Model's

    def tensor_matrix(self, tensors: dict[str, np.ndarray], rows: int) -> np.ndarray:
        # Built and checked a feature per row (columns[feature] is contiguous): writing the inputs in and
        # comparing along rows took a 1000-row heart batch from ~184 to ~133 µs (timeit, busy machine).
        # In float32 when every number came as float32 (binary FP32, as tritonclient sends): the checks
        # are exact either way (against the float32 bounds that decide as the float64 ones, _float32_bounds),
        # and the matrix needs no conversion.
        dtype = np.float32 if all(tensor.dtype != np.float64 for tensor in tensors.values()) else np.float64
        columns = np.full((len(self.features), rows), np.nan, dtype=dtype)
        texts: dict[int, np.ndarray] = {}
        for name, tensor in tensors.items():
            index = self._index[name]
            values = tensor.reshape(-1)
            if index in self._tables:
                texts[index] = values
                table = self._tables[index]
                if isinstance(values, Categorical):  # a code per category, then one gather: ~5 µs, not ~45
                    codes = [table.get(text, _BAD) for text in values.categories.tolist()]
                    columns[index] = np.array(codes)[values.codes]
                else:
                    columns[index] = list(map(table.get, values.tolist(), repeat(_BAD)))
            else:
                columns[index] = values
        # NaN compares False everywhere: a missing value is never `inside`, and is let through below only
        # where the feature is nullable. Only when something is not inside is the matrix looked at closer.
        low, high = (self._low, self._high) if dtype is np.float64 else (self._low32, self._high32)
        inside = (columns >= low[:, None]) & (columns <= high[:, None])
        whole = columns[self._whole_rows]
        inside[self._whole_rows] &= whole == np.floor(whole)
        for index in self._sparse:
            inside[index] &= np.isin(columns[index], self.features[index].codes)
        if not inside.all():
            bad = ~inside & ~(np.isnan(columns) & self._nullable[:, None])
            if bad.any():
                raise self._refusal(columns.T, bad.T, texts)
        return np.ascontiguousarray(columns.T, dtype=np.float32)  # float64 → float32, as the JSON route's floats

    def tensor_row(self, values: list[Any]) -> list[Any] | None:
        """tensor_matrix's checks one value at a time, for a single row without numpy (13 features: ~3 µs,
        the matrix ~50 µs); None (left to tensor_matrix) wherever it would refuse."""
        row: list[Any] = []
        for given, (table, low, high, whole, nullable, codes) in zip(values, self._row_checks, strict=True):
            value = given
            if value is not None:
                if table is not None:  # a text category: its code (None if it is none of them)
                    value = table.get(value)
                elif type(value) in _NOT_NUMBERS:  # not isinstance(value, str | bool): ~40 % of this loop's cost
                    return None
                if value is None or not low <= value <= high or (whole and value % 1):
                    return None
                if codes is not None and value not in codes:
                    return None
            elif not nullable:
                return None
            row.append(value)
        return row

    def row_output_tensors(self, output: Any, decision: int) -> dict[str, tuple[str, list[int], list[Any]]]:
        """Every output tensor of the one row `tensor_row` gave, by name: (datatype, shape, values), as
        `output_tensors` gives them; a model may give the same without numpy."""
        built = self.output_tensors(np.asarray(output)[None], np.array([decision]))  # type: ignore[attr-defined]
        return {tensor.name: (tensor.datatype, *built[tensor.name]()) for tensor in self.tensor_outputs}

    def _refusal(self, matrix: np.ndarray, bad: np.ndarray, texts: dict[int, np.ndarray]) -> ServiceError:
        """The error for the first offending value, in feature order (the caller found that there is one)."""
        column = first(bad.any(axis=0))
        row = first(bad[:, column])
        spec, value = self.features[column], float(matrix[row, column])
        name = spec.name
        if np.isnan(value):
            nullable = ", ".join(s.name for s in self.features if s.nullable)
            message = f"input {name!r}: null at row {row}, but {name} cannot be missing (only {nullable} may)"
            return ServiceError(400, "bad_request", message, reason="missing_required")
        if spec.kind == "category":
            given = repr(texts[column][row])[:64] if column in texts else show(value)
            allowed = ", ".join(map(repr if column in texts else show, spec.categories))
            message = f"input {name!r}: {given} at row {row} is not one of {allowed}"
            return ServiceError(400, "bad_request", message, reason="category")
        whole = "a whole number " if spec.integer else ""
        low, high = _bounds(spec)
        message = f"input {name!r}: {show(value)} at row {row} is not {whole}within {show(low)}..{show(high)}"
        return ServiceError(400, "bad_request", message, reason="range")


def derive_tensors(target: Any, features: tuple[FeatureSpec, ...]) -> None:
    """The class attributes TabularTensors needs, and the model's `tensor_inputs`, from its feature specs."""
    names = [spec.name for spec in features]
    target.tensor_inputs = tuple(
        TensorInput(s.name, ("BYTES",) if _is_text(s) else NUMERIC, _SHAPES, required=not s.nullable) for s in features
    )
    target._index = {name: index for index, name in enumerate(names)}
    target._tables = {
        i: {**dict(zip(s.categories, s.codes, strict=True)), None: np.nan}
        for i, s in enumerate(features)
        if _is_text(s)
    }
    target._low = np.array([_bounds(s)[0] for s in features])
    target._high = np.array([_bounds(s)[1] for s in features])
    target._low32, target._high32 = _float32_bounds(target._low, target._high)
    target._whole = np.array([s.integer or (s.kind == "category" and not _is_text(s)) for s in features])
    target._whole_rows = np.flatnonzero(target._whole)
    target._nullable = np.array([s.nullable for s in features])
    # Numeric categories whose codes have gaps need a membership check besides the range.
    target._sparse = [
        i
        for i, s in enumerate(features)
        if s.kind == "category"
        and not _is_text(s)
        and set(s.codes) != set(range(int(_bounds(s)[0]), int(_bounds(s)[1]) + 1))
    ]
    # tensor_row's checks per feature, in the features' order: text → code table (None: a number), bounds,
    # whole, nullable, and the codes of a numeric category with gaps (None: the bounds suffice).
    sparse = {i: frozenset(features[i].codes) for i in target._sparse}
    target._row_checks = [
        (target._tables.get(i), *_bounds(s), bool(target._whole[i]), s.nullable, sparse.get(i))
        for i, s in enumerate(features)
    ]
