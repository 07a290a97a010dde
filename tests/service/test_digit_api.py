"""POST /predict/digit and /predict/digit/batch: pixels, images, and every way to get them wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from litestar.testing import TestClient


def _as_image(pixels: list[float], scale: int = 4, dark_on_light: bool = False) -> list[list[int]]:
    """An 8×8 count image drawn as grey levels and scaled up by pixel repetition."""
    grey = (np.asarray(pixels, dtype=float).reshape(8, 8) * 255 / 16).round().astype(int)
    if dark_on_light:
        grey = 255 - grey
    return np.kron(grey, np.ones((scale, scale), dtype=int)).tolist()


def test_pixels_give_a_complete_prediction(client: TestClient, digits_reference: dict[str, Any]) -> None:
    response = client.post("/predict/digit", json=digits_reference["inputs"][0])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"digit", "probability", "probabilities", "threshold", "confident", "version"}
    assert len(body["probabilities"]) == 10
    assert body["digit"] == int(np.argmax(body["probabilities"]))
    assert body["probability"] == max(body["probabilities"])
    assert abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["confident"] == (body["probability"] >= body["threshold"])
    assert body["threshold"] == client.get("/models/digits").json()["threshold"]


def test_an_image_of_a_digit_is_read_like_its_pixels(client: TestClient, digits_reference: dict[str, Any]) -> None:
    """Most reference digits, redrawn as a 32×32 grey image either way round, get the same answer as
    their 8×8 counts (the conversion binarises, so a few may differ)."""
    inputs = digits_reference["inputs"][:40]
    from_pixels = client.post("/predict/digit/batch", json={"instances": inputs}).json()["predictions"]
    for dark in (False, True):
        images = [{"image": _as_image(item["pixels"], dark_on_light=dark)} for item in inputs]
        from_images = client.post("/predict/digit/batch", json={"instances": images}).json()["predictions"]
        agree = sum(a["digit"] == b["digit"] for a, b in zip(from_pixels, from_images, strict=True))
        assert agree >= 0.8 * len(inputs)


def test_single_image_prediction(client: TestClient, digits_reference: dict[str, Any]) -> None:
    image = _as_image(digits_reference["inputs"][3]["pixels"], scale=10, dark_on_light=True)
    response = client.post("/predict/digit", json={"image": image})
    assert response.status_code == 200
    assert 0 <= response.json()["digit"] <= 9


def test_batch_keeps_order_and_mixes_forms(client: TestClient, digits_reference: dict[str, Any]) -> None:
    first, second = digits_reference["inputs"][:2]
    response = client.post(
        "/predict/digit/batch", json={"instances": [first, {"image": _as_image(second["pixels"])}, first]}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"predictions", "version", "threshold"}
    predictions = body["predictions"]
    assert len(predictions) == 3
    assert predictions[0] == predictions[2]
    assert set(predictions[0]) == {"digit", "probability", "probabilities", "confident"}
    single = client.post("/predict/digit", json=first).json()
    assert single["probabilities"] == predictions[0]["probabilities"]


BLANK = [[200] * 16 for _ in range(16)]
EIGHT = [[0] * 8 for _ in range(8)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pixels": [0] * 63}, "pixels"),
        ({"pixels": [0] * 65}, "pixels"),
        ({"pixels": [0] * 63 + [17]}, "pixels.63"),
        ({"pixels": [-1] + [0] * 63}, "pixels.0"),
        ({"pixels": [True] * 64}, "pixels.0"),
        ({"pixels": ["1"] * 64}, "pixels.0"),
        ({}, "pixels"),
        ({"pixels": [0] * 64, "image": EIGHT}, "pixels"),
        ({"pixels": None, "image": None}, "pixels"),
        ({"image": BLANK}, "image"),
        ({"image": [[0] * 8] * 7}, "image"),
        ({"image": [[0] * 7] * 8}, "image.0"),
        ({"image": [[0] * 513] * 8}, "image.0"),
        ({"image": [[0] * 8] * 513}, "image"),
        ({"image": [[0] * 10] * 9 + [[0] * 9]}, "image.9"),
        ({"image": [[0] * 8] * 7 + [[0] * 7 + [256]]}, "image.7.7"),
        ({"image": [[0] * 8] * 7 + [[0] * 7 + [None]]}, "image.7.7"),
        ({"image": [0] * 64}, "image.0"),
        ({"picture": EIGHT}, "picture"),
    ],
    ids=[
        "63 pixels",
        "65 pixels",
        "pixel over 16",
        "negative pixel",
        "bool pixels",
        "string pixels",
        "neither",
        "both",
        "both null",
        "blank image",
        "image too short",
        "image too narrow",
        "image too wide",
        "image too tall",
        "ragged image",
        "grey level over 255",
        "null grey level",
        "flat image",
        "unknown field",
    ],
)
def test_bad_digit_is_422_naming_the_field(client: TestClient, expect_error: Any, body: Any, field: str) -> None:
    expect_error(client.post("/predict/digit", json=body), 422, "validation_failed", field)


def test_blank_image_says_so(client: TestClient, expect_error: Any) -> None:
    error = expect_error(client.post("/predict/digit", json={"image": BLANK}), 422, "validation_failed", "image")
    assert "no ink" in error["fields"][0]["reason"]


def test_bad_item_in_a_batch_is_named_by_index(
    client: TestClient, expect_error: Any, digits_reference: dict[str, Any]
) -> None:
    good = digits_reference["inputs"][0]
    response = client.post("/predict/digit/batch", json={"instances": [good, good, {"image": BLANK}]})
    expect_error(response, 422, "validation_failed", "instances.2.image")
    response = client.post("/predict/digit/batch", json={"instances": [good, {"pixels": [99] * 64}]})
    expect_error(response, 422, "validation_failed", "instances.1.pixels.0")


def test_empty_and_oversized_digit_batches_are_422(
    client: TestClient, expect_error: Any, settings: Any, digits_reference: dict[str, Any]
) -> None:
    expect_error(client.post("/predict/digit/batch", json={"instances": []}), 422, "validation_failed", "instances")
    many = [digits_reference["inputs"][0]] * (settings.max_batch + 1)
    expect_error(client.post("/predict/digit/batch", json={"instances": many}), 422, "validation_failed", "instances")


def test_digit_routes_take_no_threshold(
    client: TestClient, expect_error: Any, digits_reference: dict[str, Any]
) -> None:
    response = client.post("/predict/digit?threshold=0.5", json=digits_reference["inputs"][0])
    expect_error(response, 422, "validation_failed", "threshold")
