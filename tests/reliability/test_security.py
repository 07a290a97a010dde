"""Security properties of `python -m service` as deployed.

- Paths that try to leave the artifacts directory (CURRENT with `..`, an absolute path or a symlink;
  a version directory, a file or a sub-directory that is a symlink out of the tree; a manifest listing
  `../..`), and named pipes where CURRENT or the manifest should be (a read would block for ever), are
  refused at start-up and by a hot reload, naming the file (rows of bench-results/faults.md).
- The admin route: 404 without SERVICE_ADMIN_TOKEN; 401 for a missing, wrong, truncated, extended or
  mis-schemed token; 200 for the right one; compared with a constant-time function (checked in the
  source: a statistical timing test would be flaky) and never logged.
- No feature value from any request, valid or refused, reaches the log (DEBUG level, access log on).
- No torch library is mapped into the server process or its workers (/proc/<pid>/maps).

Running as non-root is asserted where it is specified: tests/deploy/test_k8s.py (runAsNonRoot, uid
10001) and tests/deploy/test_runtime_image_contract.py (the Dockerfile's USER, and a run as uid 10001).
"""

from __future__ import annotations

import ast
import signal
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest

from service.contract import HEART_EXAMPLE
from tests.reliability.faults import (
    AUTH,
    PATH_FAULTS,
    TOKEN,
    Fault,
    Server,
    StartUp,
    check_reload,
    check_start_up,
    fault_fixtures,
    json_lines,
)
from tests.reliability.workers import shut_down, wait_workers_ready, workers
from tests.service.processes import ROOT, output, start, wait_ready

SERVICE = ROOT / "service"


fault_table, start_ups, server = fault_fixtures(PATH_FAULTS, "paths")


# --- paths out of the artifacts directory ----------------------------------------------------------


@pytest.mark.parametrize("fault", PATH_FAULTS, ids=lambda fault: fault.key)
def test_start_up_refuses_paths_out_of_the_tree(fault: Fault, start_ups: dict[str, Future[StartUp]]) -> None:
    check_start_up(fault, start_ups[fault.key])


@pytest.mark.parametrize("fault", PATH_FAULTS, ids=lambda fault: fault.key)
def test_reload_refuses_paths_out_of_the_tree(fault: Fault, server: Server) -> None:
    check_reload(fault, server)


# --- the admin token ---------------------------------------------------------------------------------


def _calls(tree: ast.AST) -> set[str]:
    """Dotted names of every call in `tree` (`hmac.compare_digest`, `len`, ...)."""
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_the_token_is_compared_in_constant_time() -> None:
    source = SERVICE / "api" / "admin.py"
    tree = ast.parse(source.read_text())
    (authorised,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_authorised"]
    assert _calls(authorised) & {"hmac.compare_digest", "secrets.compare_digest", "compare_digest"}
    # Nowhere in the service is anything named like a token compared with ==, !=, `in` or startswith.
    offending = []
    for path in SERVICE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
            ):
                operands = [node.left, *node.comparators]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr not in ("startswith", "endswith", "find", "index"):
                    continue
                operands = [node.func.value, *node.args]
            else:
                continue
            if any("token" in ast.unparse(operand).lower() for operand in operands):
                offending.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offending == []


# --- one running service per worker layout: auth, logs, memory maps -------------------------------

VALID = {**HEART_EXAMPLE, "age": 58.8125, "chol": 437.0625, "trestbps": 173.4375, "oldpeak": 3.796875}
# Each distinctive: four decimals never occur in a duration (three) or a timestamp (milliseconds).
SECRET_VALUES = ["58.8125", "437.0625", "173.4375", "3.796875", "1437.0625", "12.8125", "6.2451", "smoker_secret"]


def _send_distinctive_requests(client: httpx.Client) -> None:
    """Valid and refused heart requests whose values are in SECRET_VALUES; each status checked."""
    assert client.post("/predict/heart", json=VALID).status_code == 200
    assert client.post("/predict/heart?threshold=0.4375", json=VALID).status_code == 200
    assert client.post("/predict/heart/batch", json={"instances": [VALID, {**VALID, "cp": None}]}).status_code == 200
    refused = [
        client.post("/predict/heart", json={**VALID, "chol": 1437.0625}),  # out of range
        client.post("/predict/heart", json={**VALID, "trestbps": "173.4375"}),  # a string
        client.post("/predict/heart", json={**VALID, "smoker_secret": 1}),  # an unknown field
        client.post("/predict/heart/batch", json={"instances": [VALID, {**VALID, "oldpeak": 12.8125}]}),
        client.post("/predict/heart?threshold=6.2451", json=VALID),  # a query out of range
    ]
    assert [r.status_code for r in refused] == [422] * len(refused), [r.text for r in refused]
    malformed = client.post(
        "/predict/heart", content=b'{"age": 58.8125, "chol": 437.0625,', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    text = client.post("/predict/heart", content=b"chol=437.0625", headers={"content-type": "text/plain"})
    assert text.status_code == 415


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("worker_count", [1, 2])
def test_a_running_service_keeps_secrets(small_artifacts: Path, tmp_path: Path, worker_count: int) -> None:
    token = {"SERVICE_ADMIN_TOKEN": TOKEN} if worker_count == 2 else {}
    metrics = tmp_path / "metrics"
    process, url = start(
        small_artifacts,
        SERVICE_WORKERS=str(worker_count),
        SERVICE_LOG_LEVEL="DEBUG",
        SERVICE_ACCESS_LOG="true",
        SERVICE_METRICS_DIR=str(metrics),
        SERVICE_RELOAD_INTERVAL="0",
        **token,
    )
    try:
        wait_ready(process, url)
        pids = wait_workers_ready(process, metrics, worker_count)  # granian's workers are child processes
        with httpx.Client(base_url=url, timeout=30) as client:
            _send_distinctive_requests(client)
            answers = {
                "none": client.post("/admin/reload"),
                "wrong": client.post("/admin/reload", headers={"Authorization": "Bearer wrong-token-0123456789"}),
                "prefix": client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN[:-1]}"}),
                "extended": client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}x"}),
                "scheme": client.post("/admin/reload", headers={"Authorization": f"Basic {TOKEN}"}),
                "bare": client.post("/admin/reload", headers={"Authorization": TOKEN}),
                "query": client.post(f"/admin/reload?token={TOKEN}"),
                "right": client.post("/admin/reload", headers=AUTH),
            }
            codes = {name: answer.status_code for name, answer in answers.items()}
            if worker_count == 2:  # the token is set: 401 for everything but the right one
                assert codes == {**dict.fromkeys(codes, 401), "right": 200}, codes
                assert {m["result"] for m in answers["right"].json()["models"]} == {"unchanged"}
                refused = [answer for name, answer in answers.items() if name != "right"]
                assert all(answer.headers["www-authenticate"] == "Bearer" for answer in refused)
            else:  # no token configured: the route does not exist, whatever is sent
                assert codes == dict.fromkeys(codes, 404), codes

        # No torch in any serving process; onnxruntime is, so the maps do show Python's libraries.
        for pid in {process.pid, *workers(process.pid)}:
            maps = _maps(pid)
            assert "torch" not in maps and "libc10" not in maps, f"torch is mapped into {pid}"
        for pid in pids:
            assert "onnxruntime" in _maps(pid), f"worker {pid}: the maps should show onnxruntime"

        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log = output(process)
    finally:
        shut_down(process)
    lines = json_lines(log)
    (starting,) = [line for line in lines if line["message"] == "starting"]
    assert starting["settings"]["log_level"] == "DEBUG"
    access = [line for line in lines if line.get("logger") == "service.access"]
    assert len(access) >= 10, "the requests were logged..."
    for value in [*SECRET_VALUES, TOKEN, TOKEN[:-1], "wrong-token-0123456789"]:
        assert value not in log, f"...but {value!r} is in the log"
