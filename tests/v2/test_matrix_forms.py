"""The heart model's tensor_matrix takes its inputs in every form the wire readers give them: float64
(JSON, gRPC typed contents), float32 (binary FP32, a view of the body) and, for a text category, an object
array of str or a Categorical (binary BYTES of elements seen before). Whatever the form, the matrix is the
same and so is the refusal: the same first offending value, quoted the same way."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import ServiceError
from service.models.tabular_tensors import _float32_bounds
from service.models.tensors import Categorical

ROWS = 6


def outcome(model, tensors: dict[str, object]) -> tuple[str, object]:
    try:
        matrix = model.tensor_matrix(tensors, ROWS)
    except ServiceError as error:
        return "refused", (error.status, error.message)
    assert matrix.dtype == np.float32 and matrix.flags.c_contiguous
    return "ok", matrix.tobytes()


def as_categorical(texts: list[object]) -> Categorical:
    categories = sorted(set(texts))
    array = np.empty(len(categories), dtype=object)
    array[:] = categories
    return Categorical(np.array([categories.index(text) for text in texts]), array)


def as_objects(texts: list[object]) -> np.ndarray:
    array = np.empty(len(texts), dtype=object)
    array[:] = texts
    return array


def column_values(spec) -> st.SearchStrategy[float]:
    """A feature's values around what it accepts: its bounds and codes, the float32 neighbours of each
    (inside and just outside), halves, NaN."""
    if spec.kind == "number":
        edges = [float(spec.minimum), float(spec.maximum)]
    else:
        edges = [float(code) for code in spec.codes if not isinstance(code, str)] or [0.0]
    near = [float(np.nextafter(np.float32(edge), np.float32(way))) for edge in edges for way in (-np.inf, np.inf)]
    return st.sampled_from([*edges, *near, edges[0] + 0.5, float("nan"), -1.0]) | st.floats(
        min_value=edges[0] - 2, max_value=edges[-1] + 2, width=32
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_float32_and_float64_inputs_give_one_matrix_and_one_refusal(heart, data) -> None:
    """Binary FP32 columns are checked in float32 (no conversion); JSON's in float64: same outcome for
    every value, bounds and their float32 neighbours included."""
    model = heart[0].model
    numbers = {}
    for spec in model.features:
        if any(isinstance(code, str) for code in spec.categories or ()):
            continue
        values = data.draw(st.lists(column_values(spec), min_size=ROWS, max_size=ROWS), label=spec.name)
        numbers[spec.name] = np.array(values, dtype=np.float32)
    thal = as_objects(
        data.draw(st.lists(st.sampled_from(["normal", "fixed", "reversible"]), min_size=ROWS, max_size=ROWS))
    )
    narrow = {**numbers, "thal": thal}
    wide = {**{name: values.astype(np.float64) for name, values in numbers.items()}, "thal": thal}
    assert outcome(model, narrow) == outcome(model, wide)


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(
        st.sampled_from(["normal", "fixed", "reversible", "bogus", "Fixed", ""]), min_size=ROWS, max_size=ROWS
    )
)
def test_a_categorical_reads_as_its_texts(heart, texts) -> None:
    """A Categorical of texts (unknown ones included: the wire reader learns any short text) gives what the
    same texts as str objects give: the codes, or the refusal naming the first unknown text."""
    model = heart[0].model
    base = {name: np.full(ROWS, value, dtype=np.float32) for name, value in PATIENT.items()}
    categorical = outcome(model, {**base, "thal": as_categorical(texts)})
    assert categorical == outcome(model, {**base, "thal": as_objects(texts)})
    assert categorical[0] == ("ok" if set(texts) <= {"normal", "fixed", "reversible"} else "refused")


def test_an_unknown_category_is_named_from_a_categorical(heart) -> None:
    model = heart[0].model
    base = {name: np.full(ROWS, value, dtype=np.float32) for name, value in PATIENT.items()}
    texts = ["fixed", "normal", "fixed", "bogus", "normal", "fixed"]
    with pytest.raises(ServiceError) as refused:
        model.tensor_matrix({**base, "thal": as_categorical(texts)}, ROWS)
    assert refused.value.status == 400
    assert "input 'thal': 'bogus' at row 3 is not one of" in refused.value.message


PATIENT = {
    "age": 63, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1, "restecg": 2,
    "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0,
}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    bounds=st.lists(st.floats(allow_nan=False, width=64), min_size=2, max_size=2).map(sorted),
    values=st.lists(st.floats(width=32), min_size=1, max_size=20),
)
def test_float32_bounds_decide_as_the_float64_bounds(bounds, values) -> None:
    """A float32 value is within the float32 bounds exactly when it is within the float64 ones, also for
    bounds float32 cannot hold (0.1, 1e40) and the values next to them."""
    low, high = np.array([bounds[0]]), np.array([bounds[1]])
    low32, high32 = _float32_bounds(low, high)
    near = [np.float32(bound) for bound in bounds if abs(bound) < 3e38]
    candidates = np.array(values + near, dtype=np.float32)
    with np.errstate(over="ignore"):  # the neighbour of float32's largest value is inf
        above, below = np.nextafter(candidates, np.float32(np.inf)), np.nextafter(candidates, np.float32(-np.inf))
    candidates = np.concatenate([candidates, above, below])
    wide = (candidates.astype(np.float64) >= low[0]) & (candidates.astype(np.float64) <= high[0])
    assert np.array_equal((candidates >= low32[0]) & (candidates <= high32[0]), wide)
