"""The page in a real browser: Debian's chromium driven by Playwright for Python, against a real
`python -m service` over a socket. Every page a test opens is watched: a console error, a CSP
violation, a failed request or a request to any origin but the service's fails the test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.service.processes import start, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "web"  # screenshots, for a person to look at
WIDTHS = {"phone": 375, "desktop": 1280}


@pytest.fixture(scope="session")
def web_artifacts(small_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small heart model, and a digits model good enough to read drawn digits (tests.web.train_digits)."""
    artifacts = tmp_path_factory.mktemp("web-artifacts")
    shutil.copytree(small_artifacts / "heart", artifacts / "heart")
    done = subprocess.run(
        [sys.executable, "-m", "tests.web.train_digits", str(artifacts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"training digits for the browser tests failed:\n{done.stdout}\n{done.stderr}"
    return artifacts


@pytest.fixture(scope="session")
def service_url(web_artifacts: Path) -> Iterator[str]:
    process, url = start(web_artifacts, SERVICE_RELOAD_INTERVAL="0")
    try:
        wait_ready(process, url)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: run `make tools`"
    with sync_playwright() as playwright:
        # --no-sandbox: chromium's sandbox refuses to run as root, as CI and this machine do.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page and everything wrong seen on it."""

    page: Any
    url: str
    problems: list[str] = field(default_factory=list)
    expect_422: bool = False
    size: str = ""

    def open(self, tab: str) -> Any:
        self.page.goto(f"{self.url}/#{tab}")
        self.page.wait_for_load_state("networkidle")
        return self.page

    def screenshot(self, name: str) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)


def watch(browser: Any, url: str, width: int) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": 900}, service_workers="block")
    page = context.new_page()
    watched = Watched(page, url)

    def guard(route: Any) -> None:
        if route.request.url.startswith(url + "/"):
            route.continue_()
        else:  # the page must need nothing from anywhere else
            watched.problems.append(f"request to another origin: {route.request.url}")
            route.abort()

    context.route("**/*", guard)
    # Chromium reports CSP violations on the console too; this says which directive, whatever the wording.
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )

    def console(message: Any) -> None:
        # A 422 the test asked for (a value out of range) is logged by Chromium as a failed resource.
        expected = watched.expect_422 and "status of 422" in message.text
        if message.type == "error" and not expected:
            watched.problems.append(f"console error: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: watched.problems.append(f"request failed: {r.url} {r.failure}"))
    return watched


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def watched(request: pytest.FixtureRequest, browser: Any, service_url: str) -> Iterator[Watched]:
    """A fresh page at 375 or 1280 px; fails the test if anything went wrong on it."""
    page = watch(browser, service_url, WIDTHS[request.param])
    page.size = request.param
    yield page
    page.page.context.close()
    assert page.problems == [], page.problems
