"""Properties of every request model, over Litestar's TestClient (the whole app, in-process).

Valid inputs are generated from the documented contract (`service.contract.HEART_FEATURES` ranges and
categories, `null` or absent where allowed; 64 pixels 0..16; images 8..512 a side with a drawing)
and must get 200 with probabilities in [0, 1]. Invalid ones change exactly one thing (a value out of
range, of the wrong type, an unlisted category, an unknown key, a ragged row) and must get 422 naming
exactly that field, with its row index in a batch. test_heart_api.py and test_digit_api.py pin
hand-picked examples; these generate them.

CI runs a derandomised budget; `make fuzz` raises it (`FUZZ_EXAMPLES`) and explores (`FUZZ_SEED`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.app import create_app
from service.contract import DIGIT_MAX_VALUE, DIGIT_PIXELS, HEART_FEATURE_NAMES, HEART_FEATURES, FeatureSpec
from service.models.digits import GREY_MAX, IMAGE_MIN_SIDE
from service.settings import Settings
from tests.reliability.live import assert_error_shape

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
EXPLORE = "FUZZ_EXAMPLES" in os.environ  # `make fuzz`: random exploration (seeded by FUZZ_SEED)
SEED = int(os.environ.get("FUZZ_SEED", "0"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=not EXPLORE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_SIDE_TRIED = 48  # images up to 512 a side are valid; the hostile-input suite sends those


@pytest.fixture(scope="module")
def client(small_artifacts: Path) -> Iterator[TestClient]:
    with TestClient(app=create_app(Settings(artifacts_dir=small_artifacts))) as test_client:
        yield test_client


def post(client: TestClient, route: str, body: Any, query: str = "") -> Any:
    # allow_nan=False: every generated value must be expressible in JSON (NaN literals are a 400)
    content = json.dumps(body, allow_nan=False).encode()
    return client.post(route + query, content=content, headers={"content-type": "application/json"})


# ---------------------------------------------------------------------------------------------- heart

SPECS = {spec.name: spec for spec in HEART_FEATURES}
MINIMAL_PATIENT = {"age": 61, "sex": 1}
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # no lone surrogates: not JSON text


def valid_value(spec: FeatureSpec) -> st.SearchStrategy[Any]:
    if spec.kind == "category":
        return st.sampled_from(spec.categories)
    assert spec.minimum is not None and spec.maximum is not None
    integers = st.integers(math.ceil(spec.minimum), math.floor(spec.maximum))
    if spec.integer:
        return integers
    return integers | st.floats(spec.minimum, spec.maximum, allow_nan=False)


@st.composite
def valid_patients(draw: st.DrawFn) -> dict[str, Any]:
    """A patient within the documented ranges; an optional field may be a value, null or absent."""
    patient: dict[str, Any] = {}
    for spec in HEART_FEATURES:
        form = draw(st.sampled_from(["value", "null", "absent"])) if spec.nullable else "value"
        if form == "value":
            patient[spec.name] = draw(valid_value(spec))
        elif form == "null":
            patient[spec.name] = None
    return patient


def listed(value: Any, spec: FeatureSpec) -> bool:
    """`value` is one of the field's categories, type included (`True == 1`, but `true` is no code)."""
    return any(type(value) is type(category) and value == category for category in spec.categories)


def invalid_value(spec: FeatureSpec) -> st.SearchStrategy[Any]:
    """A JSON value this field must refuse with a 422."""
    wrong_type = st.booleans() | TEXT | st.lists(st.integers(), max_size=2) | st.just({"value": 1})
    if spec.kind == "category":
        # a float equal to a listed code (1.0 for 1) is refused too: categories are exact integers
        as_float = st.sampled_from([float(c) for c in spec.categories if isinstance(c, int)] or [1.5])
        bad = (st.integers(-1000, 1000) | wrong_type | as_float).filter(lambda v: not listed(v, spec))
    else:
        assert spec.minimum is not None and spec.maximum is not None
        below = st.floats(max_value=spec.minimum, exclude_max=True, allow_nan=False, allow_infinity=False)
        above = st.floats(min_value=spec.maximum, exclude_min=True, allow_nan=False, allow_infinity=False)
        bad = below | above | wrong_type
        if spec.integer:  # a fraction, or a float with none (`2.0`): the README says JSON integers only
            fraction = st.floats(spec.minimum, spec.maximum, allow_nan=False).filter(lambda v: v != int(v))
            bad = bad | fraction | st.integers(int(spec.minimum), int(spec.maximum)).map(float)
    return bad | st.just(None) if not spec.nullable else bad


@st.composite
def invalid_patients(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid patient with exactly one thing wrong, and the field the error must name."""
    patient = draw(valid_patients())
    if draw(st.integers(0, 9)) == 0:  # an unknown key
        key = draw(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12))
        if key not in SPECS:
            patient[key] = draw(st.integers() | TEXT | st.none())
            return patient, key
    name = draw(st.sampled_from(HEART_FEATURE_NAMES))
    patient[name] = draw(invalid_value(SPECS[name]))
    return patient, name


def assert_heart_prediction(row: dict[str, Any], patient: dict[str, Any], threshold: float) -> None:
    assert 0.0 <= row["probability"] <= 1.0
    assert row["prediction"] == int(row["probability"] >= threshold)
    assert row["label"] == ("disease" if row["prediction"] else "no disease")
    assert row["missing"] == [name for name in HEART_FEATURE_NAMES if patient.get(name) is None]


@PROPERTY
@seed(SEED)
@given(patient=valid_patients(), threshold=st.none() | st.floats(0.001, 0.999))
def test_any_valid_patient_gets_a_probability(client: TestClient, patient: dict[str, Any], threshold: Any) -> None:
    query = "" if threshold is None else f"?threshold={threshold!r}"
    response = post(client, "/predict/heart", patient, query)
    assert response.status_code == 200, response.text
    answer = response.json()
    if threshold is not None:
        assert answer["threshold"] == threshold
    assert_heart_prediction(answer, patient, answer["threshold"])


@PROPERTY
@seed(SEED)
@given(case=invalid_patients())
def test_a_patient_with_one_bad_field_is_422_naming_it(client: TestClient, case: tuple[dict[str, Any], str]) -> None:
    patient, field = case
    error = assert_error_shape(post(client, "/predict/heart", patient), 422, field)
    assert error["code"] == "validation_failed"


@PROPERTY
@seed(SEED)
@given(patients=st.lists(valid_patients(), min_size=1, max_size=30))
def test_any_valid_batch_is_answered_row_for_row(client: TestClient, patients: list[dict[str, Any]]) -> None:
    response = post(client, "/predict/heart/batch", {"instances": patients})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["predictions"]) == len(patients)
    for row, patient in zip(answer["predictions"], patients, strict=True):
        assert_heart_prediction(row, patient, answer["threshold"])


@PROPERTY
@seed(SEED)
@given(patients=st.lists(valid_patients(), min_size=1, max_size=20), bad=invalid_patients(), data=st.data())
def test_one_bad_row_is_422_naming_its_index_and_field(
    client: TestClient, patients: list[dict[str, Any]], bad: tuple[dict[str, Any], str], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(patients)))
    patients.insert(index, bad[0])
    response = post(client, "/predict/heart/batch", {"instances": patients})
    assert_error_shape(response, 422, f"instances.{index}.{bad[1]}")


@PROPERTY
@seed(SEED)
@given(threshold=st.floats(allow_nan=True) | TEXT)
def test_the_threshold_is_taken_only_strictly_between_0_and_1(client: TestClient, threshold: Any) -> None:
    """Any query value that is not a number strictly between 0 and 1 is refused, naming `threshold`."""
    try:
        inside = 0 < float(threshold) < 1
    except ValueError:
        inside = False
    response = client.post("/predict/heart", params={"threshold": str(threshold)}, json=MINIMAL_PATIENT)
    if inside:
        assert response.status_code == 200, response.text
    else:
        assert_error_shape(response, 422, "threshold")


# --------------------------------------------------------------------------------------------- digits

PIXEL = st.integers(0, DIGIT_MAX_VALUE) | st.floats(0, DIGIT_MAX_VALUE, allow_nan=False)
VALID_PIXELS = st.lists(PIXEL, min_size=DIGIT_PIXELS, max_size=DIGIT_PIXELS)
WRONG_NUMBER = st.booleans() | TEXT | st.none() | st.lists(st.integers(), max_size=2)


@st.composite
def drawn_images(draw: st.DrawFn) -> list[list[float]]:
    """An image of 8..MAX_SIDE_TRIED a side: a flat background with a rectangle of ink well away from
    it (at least 64 grey levels) inside the border, so it is never blank; either polarity."""
    height = draw(st.integers(IMAGE_MIN_SIDE, MAX_SIDE_TRIED))
    width = draw(st.integers(IMAGE_MIN_SIDE, MAX_SIDE_TRIED))
    background = draw(st.integers(0, GREY_MAX))
    darker = st.floats(0, background - 64) if background >= 64 else st.nothing()
    lighter = st.floats(background + 64, GREY_MAX) if background + 64 <= GREY_MAX else st.nothing()
    ink = draw(darker | lighter)
    top = draw(st.integers(1, height - 2))
    left = draw(st.integers(1, width - 2))
    bottom = draw(st.integers(top, height - 2))
    right = draw(st.integers(left, width - 2))
    return [
        [ink if top <= y <= bottom and left <= x <= right else background for x in range(width)] for y in range(height)
    ]


VALID_DIGITS = VALID_PIXELS.map(lambda p: {"pixels": p}) | drawn_images().map(lambda i: {"image": i})


@st.composite
def invalid_digits(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A digit with exactly one thing wrong, and the field path the error must name."""
    kind = draw(st.sampled_from(["pixel value", "pixel count", "grey level", "ragged", "side", "blank", "both"]))
    if kind == "pixel value":
        pixels = draw(VALID_PIXELS)
        index = draw(st.integers(0, DIGIT_PIXELS - 1))
        out_of_range = st.floats(max_value=0, exclude_max=True, allow_nan=False, allow_infinity=False) | st.floats(
            min_value=DIGIT_MAX_VALUE, exclude_min=True, allow_nan=False, allow_infinity=False
        )
        pixels[index] = draw(out_of_range | WRONG_NUMBER)
        return {"pixels": pixels}, f"pixels.{index}"
    if kind == "pixel count":
        count = draw(st.integers(0, 200).filter(lambda n: n != DIGIT_PIXELS))
        return {"pixels": draw(st.lists(PIXEL, min_size=count, max_size=count))}, "pixels"
    if kind == "both":
        return {"pixels": draw(VALID_PIXELS), "image": draw(drawn_images())}, "pixels"
    image = draw(drawn_images())
    if kind == "grey level":
        y, x = draw(st.integers(0, len(image) - 1)), draw(st.integers(0, len(image[0]) - 1))
        image[y][x] = draw(st.sampled_from([-1, -0.5, 255.5, 256, 1e6]) | WRONG_NUMBER)
        return {"image": image}, f"image.{y}.{x}"
    if kind == "ragged":
        y = draw(st.integers(1, len(image) - 1))
        # one row shorter or longer than row 0, still 8..512 long, so only the raggedness is wrong
        image[y] = image[y][:-1] if len(image[y]) > IMAGE_MIN_SIDE else [*image[y], image[y][0]]
        return {"image": image}, f"image.{y}"
    if kind == "side":
        return {"image": [row[: IMAGE_MIN_SIDE - 1] for row in image]}, "image.0"
    # blank: a checkerboard 31 grey levels deep, so no pixel is 32 levels from the background
    level, step = draw(st.integers(0, GREY_MAX)), draw(st.sampled_from([1, 31]))
    step = step if level + step <= GREY_MAX else -step
    return {"image": [[level + step * ((x + y) % 2) for x in range(len(row))] for y, row in enumerate(image)]}, "image"


def assert_digit_prediction(row: dict[str, Any], threshold: float) -> None:
    probabilities = row["probabilities"]
    assert len(probabilities) == 10 and all(0.0 <= p <= 1.0 for p in probabilities)
    assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-4)
    assert row["digit"] == probabilities.index(max(probabilities))
    assert row["probability"] == probabilities[row["digit"]]
    assert row["confident"] == (row["probability"] >= threshold)


@PROPERTY
@seed(SEED)
@given(digit=VALID_DIGITS)
def test_any_valid_digit_gets_ten_probabilities(client: TestClient, digit: dict[str, Any]) -> None:
    response = post(client, "/predict/digit", digit)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_digit_prediction(answer, answer["threshold"])


@PROPERTY
@seed(SEED)
@given(case=invalid_digits())
def test_a_digit_with_one_thing_wrong_is_422_naming_it(client: TestClient, case: tuple[dict[str, Any], str]) -> None:
    digit, field = case
    assert_error_shape(post(client, "/predict/digit", digit), 422, field)


@PROPERTY
@seed(SEED)
@given(digits=st.lists(VALID_DIGITS, min_size=1, max_size=8), bad=invalid_digits(), data=st.data())
def test_digit_batches_answer_in_order_or_name_the_bad_item(
    client: TestClient, digits: list[dict[str, Any]], bad: tuple[dict[str, Any], str], data: st.DataObject
) -> None:
    response = post(client, "/predict/digit/batch", {"instances": digits})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["predictions"]) == len(digits)
    for row in answer["predictions"]:
        assert_digit_prediction(row, answer["threshold"])
    index = data.draw(st.integers(0, len(digits)))
    digits.insert(index, bad[0])
    assert_error_shape(post(client, "/predict/digit/batch", {"instances": digits}), 422, f"instances.{index}.{bad[1]}")
