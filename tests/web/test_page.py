"""The page at `/` in Chromium: drawn digits, the patient form, the model cards; and its HTTP surface."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.contract import HEART_EXAMPLE
from service.settings import Settings
from tests.web.conftest import Watched
from tests.web.glyphs import DRAWINGS, STROKES, placed

pytestmark = pytest.mark.slow
CANVAS = 280  # the canvas' own pixels (app.js draws in these; CSS scales the element)


def manifest(artifacts: Path, model: str) -> dict[str, Any]:
    version = (artifacts / model / "CURRENT").read_text().strip()
    return json.loads((artifacts / model / version / "manifest.json").read_text())


# ---- HTTP: headers, files, the setting -----------------------------------------------------------


def test_page_headers_and_no_inline_code(service_url: str) -> None:
    page = httpx.get(f"{service_url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "img-src", "connect-src"):
        assert directives[name] == "'self'", (name, directives[name])  # no inline code, no other origin
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/web/app.js" defer>']
    assert "<style" not in html and " style=" not in html and "http://" not in html and "https://" not in html
    for name in ("app.js", "style.css"):
        answer = httpx.get(f"{service_url}/web/{name}")
        assert answer.status_code == 200 and answer.headers["x-content-type-options"] == "nosniff"
        assert "http://" not in answer.text and "https://" not in answer.text  # nothing fetched from elsewhere
    assert httpx.get(f"{service_url}/web/secrets.txt").status_code == 404


def test_only_listed_report_files_are_served(service_url: str, web_artifacts: Path) -> None:
    listed = manifest(web_artifacts, "heart")["files"]
    plots = [name for name in listed if name.startswith("report/") and name.endswith(".png")]
    assert plots
    answer = httpx.get(f"{service_url}/models/heart/files/{plots[0]}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG") and len(answer.content) == listed[plots[0]]["bytes"]
    assert "weights.pt" in listed and "manifest.json" not in listed
    for path in ("weights.pt", "preprocess.joblib", "report/../weights.pt", "report/%2e%2e/weights.pt",
                 "report/absent.png", "manifest.json", "report/../../digits/CURRENT"):  # fmt: skip
        assert httpx.get(f"{service_url}/models/heart/files/{path}").status_code == 404, path
    assert httpx.get(f"{service_url}/models/cats/files/{plots[0]}").status_code == 404


def test_an_altered_plot_is_not_served(service_url: str, web_artifacts: Path) -> None:
    heart = web_artifacts / "heart"
    version = heart / (heart / "CURRENT").read_text().strip()
    plot = sorted((version / "report").glob("*.png"))[0]
    original = plot.read_bytes()
    try:
        plot.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # same size, one bit flipped
        assert httpx.get(f"{service_url}/models/heart/files/report/{plot.name}").status_code == 404
    finally:
        plot.write_bytes(original)
    assert httpx.get(f"{service_url}/models/heart/files/report/{plot.name}").status_code == 200


def test_the_setting_turns_the_page_off(web_artifacts: Path) -> None:
    for web, status in ((False, 404), (True, 200)):
        with TestClient(app=create_app(Settings(artifacts_dir=web_artifacts, web=web, reload_interval=0))) as client:
            assert client.get("/").status_code == status
            assert client.get("/web/app.js").status_code == status
            assert client.get("/models/heart/card").status_code == status


def test_digit_api_returns_the_grid_it_saw(service_url: str) -> None:
    image = [[255] * 40 for _ in range(40)]
    for row in range(5, 35):
        image[row][18:22] = [0, 0, 0, 0]  # a "1"
    seen = httpx.post(f"{service_url}/predict/digit?pixels=true", json={"image": image}).json()
    plain = httpx.post(f"{service_url}/predict/digit", json={"image": image}).json()
    assert "pixels" not in plain and len(seen["pixels"]) == 64
    assert seen["probabilities"] == plain["probabilities"]
    again = httpx.post(f"{service_url}/predict/digit", json={"pixels": seen["pixels"]}).json()
    assert again["probabilities"] == plain["probabilities"]  # the grid is exactly what the model saw
    bad = httpx.post(f"{service_url}/predict/digit?pixels=yes", json={"image": image})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "pixels"
    batch = {"instances": [{"image": image}]}
    assert httpx.post(f"{service_url}/predict/digit/batch?pixels=true", json=batch).status_code == 422


# ---- the browser ---------------------------------------------------------------------------------


def draw(page: Any, digit: int, size: float, cx: float, cy: float, width: int) -> dict[str, Any]:
    """Draw one digit with mouse strokes; returns the request body the page sent after the last stroke."""
    page.click("#clear")
    page.locator("#pen").fill(str(width))
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / CANVAS
    body: dict[str, Any] = {}
    for stroke in placed(digit, size, cx, cy, CANVAS):
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
        with page.expect_response(lambda r: "/predict/digit" in r.url) as answer:
            page.mouse.move(*points[0])
            page.mouse.down()
            for x, y in points[1:]:
                page.mouse.move(x, y, steps=3)
            page.mouse.up()
        body = json.loads(answer.value.request.post_data)
    return body


def test_drawn_digits(watched: Watched) -> None:
    page = watched.open("digit")
    right, drawn, mismatches = 0, 0, []
    for digit in STROKES:
        for size, cx, cy, width in DRAWINGS:
            body = draw(page, digit, size, cx, cy, width)
            expected = httpx.post(f"{watched.url}/predict/digit?pixels=true", json=body).json()
            answer = page.locator("#digit-answer")
            answer.and_(page.locator(f"[data-digit='{expected['digit']}']")).wait_for()
            assert f"probability {expected['probability']:.4f}" in answer.inner_text()
            bars = page.locator("#digit-bars .value").all_inner_texts()
            assert bars == [f"{p:.4f}" for p in expected["probabilities"]]
            cells = page.locator("#grid div")
            assert [cells.nth(i).get_attribute("data-value") for i in range(64)] == [
                str(int(v)) for v in expected["pixels"]
            ]
            drawn += 1
            right += expected["digit"] == digit
            if expected["digit"] != digit:
                mismatches.append((digit, size, cx, cy, width, expected["digit"]))
            if digit == 3 and width == 18:
                watched.screenshot(f"digit-{watched.size}")
    assert right / drawn >= 0.9, f"{right}/{drawn} drawn digits read right; wrong: {mismatches}"


def fill_patient(page: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        control = page.locator(f"#f-{name}")
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value="" if value is None else json.dumps(value))
        else:
            control.fill("" if value is None else str(value))


def test_patient_form(watched: Watched, web_artifacts: Path) -> None:
    page = watched.open("patient")
    page.locator("#f-age").wait_for()
    info = httpx.get(f"{watched.url}/models/heart").json()
    assert page.locator(".field").count() == len(info["inputs"]["features"])  # built from the API
    for spec in info["inputs"]["features"]:  # every control labelled
        assert page.locator(f"label[for='f-{spec['name']}']").count() == 1

    fill_patient(page, HEART_EXAMPLE)
    page.click("#assess")
    expected = httpx.post(f"{watched.url}/predict/heart", json=HEART_EXAMPLE).json()
    answer = page.locator("#patient-answer")
    answer.and_(page.locator(f"[data-probability='{expected['probability']:.4f}']")).wait_for()
    assert expected["label"] in answer.inner_text()
    assert page.locator("#missing").inner_text() == "No field missing."
    explained = httpx.post(f"{watched.url}/predict/heart?explain=true", json=HEART_EXAMPLE).json()["explanation"]
    largest_first = sorted(explained["contributions"].items(), key=lambda item: -abs(item[1]))
    names = page.locator("#explain .bar > span:first-child").all_inner_texts()
    values = page.locator("#explain .bar .value").all_inner_texts()
    assert names == [name for name, _ in largest_first]
    assert values == [f"{value:+.4f}" for _, value in largest_first]

    sweep = {round(p["threshold"], 2): p for p in manifest(web_artifacts, "heart")["threshold"]["sweep"]}
    for threshold in (0.05, 0.3, 0.5, 0.8, 0.95):
        page.locator("#threshold").fill(str(threshold))
        point = sweep[threshold]
        label = info["labels"][1 if expected["probability"] >= threshold else 0]
        assert page.locator("#threshold-label").get_attribute("data-label") == label
        text = page.locator("#sweep").inner_text()
        assert f"sensitivity {point['sensitivity']:.3f}" in text and f"specificity {point['specificity']:.3f}" in text
    watched.screenshot(f"patient-{watched.size}")

    fill_patient(page, {"ca": None, "thal": None})
    page.click("#assess")
    blanks = {key: value for key, value in HEART_EXAMPLE.items() if key not in ("ca", "thal")}
    expected = httpx.post(f"{watched.url}/predict/heart", json=blanks).json()
    assert expected["missing"] == ["ca", "thal"]
    page.locator(f"[data-probability='{expected['probability']:.4f}']").wait_for()
    assert page.locator("#missing").inner_text() == "Missing (treated as unknown): ca, thal"

    watched.expect_422 = True
    fill_patient(page, {"trestbps": 400})
    page.click("#assess")
    refused = httpx.post(f"{watched.url}/predict/heart", json={**blanks, "trestbps": 400}).json()["error"]
    error = page.locator(".field[data-field='trestbps'] .error")
    error.and_(page.locator(".error:not(:empty)")).wait_for()
    assert error.inner_text() == refused["fields"][0]["reason"]
    assert page.locator("#f-trestbps").get_attribute("aria-invalid") == "true"
    assert page.locator(".field[data-field='age'] .error").inner_text() == ""
    watched.screenshot(f"patient-error-{watched.size}")


def test_models_page(watched: Watched) -> None:
    page = watched.open("models")
    models = httpx.get(f"{watched.url}/models").json()["models"]
    for model in models:
        article = page.locator(f"#model-{model['name']}")
        article.locator(".card h1").wait_for()
        assert model["version"] in article.inner_text() and model["sha256"] in article.inner_text()
        assert "Model card" in article.locator(".card").inner_text()
    images = page.locator(".card img")
    assert images.count() >= 4
    for index in range(images.count()):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete", arg=image.element_handle())
        assert image.evaluate("img => img.naturalWidth") > 0, image.get_attribute("src")
    watched.screenshot(f"models-{watched.size}")


def test_keyboard_reaches_every_control(watched: Watched) -> None:
    page = watched.open("patient")
    page.locator("#f-age").wait_for()
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
    assert {"tab-digit", "tab-patient", "tab-models", "f-age", "f-thal", "assess", "threshold"} <= reached
