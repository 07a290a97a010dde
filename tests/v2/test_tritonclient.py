"""A real, independent client: tritonclient's HTTP InferenceServerClient against `python -m service`,
with its defaults (binary tensor data both ways) and with binary data turned off.

The client runs in a child process (tests/v2/triton_session.py), see there why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.processes import start, stop, wait_ready

pytest.importorskip("tritonclient.http", reason="tritonclient[http] is in the dev extra")
SESSION = Path(__file__).with_name("triton_session.py")


@pytest.fixture(scope="module")
def service_url(small_artifacts: Path) -> Iterator[str]:
    process, url = start(small_artifacts, SERVICE_ACCESS_LOG="false")
    try:
        wait_ready(process, url)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module", params=[True, False], ids=["binary (the default)", "json"])
def session(
    request: pytest.FixtureRequest,
    service_url: str,
    heart_reference: dict[str, Any],
    digits_reference: dict[str, Any],
    digits_version: Path,
) -> dict[str, Any]:
    complete = [
        index for index, row in enumerate(heart_reference["inputs"]) if len(row) == 13 and None not in row.values()
    ]
    partial = [{k: v for k, v in heart_reference["inputs"][i].items() if k not in ("ca", "thal")} for i in complete[:5]]
    job = {
        "url": service_url,
        "binary": request.param,
        "heart": [heart_reference["inputs"][i] for i in complete],
        "heart_partial": partial,
        "digits": digits_reference["inputs"][:20],
        "digits_version": digits_version.name,
    }
    done = subprocess.run(
        [sys.executable, str(SESSION)], input=json.dumps(job), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    result["complete"] = complete
    result["partial_rows"] = partial
    return result


def test_health_and_readiness(session: dict[str, Any]) -> None:
    assert session["live"] is True
    assert session["ready"] is True
    assert session["heart_ready"] is True
    assert session["heart_version_ready"] is True
    assert session["cats_ready"] is False


def test_model_metadata(session: dict[str, Any], heart_version: Path, digits_version: Path) -> None:
    heart, digits = session["heart_metadata"], session["digits_metadata"]
    assert heart["versions"] == [heart_version.name]
    assert len(heart["inputs"]) == 13
    assert {tensor["name"] for tensor in heart["outputs"]} == {"probability", "prediction", "label"}
    assert digits["versions"] == [digits_version.name]
    assert digits["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]


def test_heart_infer_matches_the_reference(session: dict[str, Any], heart_reference: dict[str, Any]) -> None:
    heart = session["heart"]
    expected = [heart_reference["probabilities"][i] for i in session["complete"]]
    assert len(expected) > 50
    assert heart["id"] == "h-1"
    assert heart["probability"] == pytest.approx(expected, abs=1e-5)
    assert heart["label"] == [["no disease", "disease"][p] for p in heart["prediction"]]
    assert 0 < sum(heart["prediction"]) < len(expected), "both labels should occur among the reference rows"
    assert session["heart_strict"] == [int(p >= 0.999) for p in heart["probability"]]


def test_heart_inputs_left_out_are_missing_as_in_predict(session: dict[str, Any], service_url: str) -> None:
    rows = session["partial_rows"]
    answers = httpx.post(f"{service_url}/predict/heart/batch", json={"instances": rows}, timeout=10).json()
    assert all(row["missing"] == ["ca", "thal"] for row in answers["predictions"])
    assert session["heart_partial"] == pytest.approx([row["probability"] for row in answers["predictions"]], abs=1e-6)


def test_digits_infer_matches_the_reference(
    session: dict[str, Any], digits_reference: dict[str, Any], digits_version: Path
) -> None:
    digits = session["digits"]
    expected = digits_reference["probabilities"][:20]
    assert digits["model_version"] == digits_version.name
    assert len(digits["probabilities"]) == 20
    for got, want in zip(digits["probabilities"], expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    assert digits["digit"] == [max(range(10), key=row.__getitem__) for row in expected]


def test_a_refusal_reaches_the_client_with_the_servers_message(session: dict[str, Any]) -> None:
    assert "400" in session["refused"]["status"]
    assert "'pixels'" in session["refused"]["message"]
    assert "[1, 63]" in session["refused"]["message"]
