"""Broken artifacts, made the same way for a start-up and for a hot reload, and the table of outcomes.

Each `Fault` builds one bad heart version next to the good one (or a CURRENT that points somewhere it
must not) and says which file the refusal has to name. `publish` then points `heart/CURRENT` at it,
atomically as training does. The start-up and reload tests record one row each per fault;
`write_table` renders them as Markdown (bench-results/faults.md, git-ignored) for RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import onnx
import pytest
from onnx import TensorProto, helper

from service.contract import HEART_ONNX_INPUT, HEART_ONNX_OUTPUT, file_entry
from tests.service.processes import ROOT, output, start, stop, total, wait_ready

MODEL = "heart"
TOKEN = "reliability-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATIENT = {"age": 61, "sex": 1, "cp": 4}
TABLE = ROOT / "bench-results" / "faults.md"


@dataclass(frozen=True)
class Made:
    """What a fault produced: the text to write into CURRENT (empty: the fault replaced CURRENT itself),
    and what the refusal must name (a file, or the version directory)."""

    current: str
    names: str


@dataclass(frozen=True)
class Fault:
    key: str
    what: str  # a sentence for the table
    make: Callable[[Path, Path], Made]  # (artifacts dir, scratch dir outside it) → Made


def good_version(artifacts: Path, model: str = MODEL) -> str:
    return (artifacts / model / "CURRENT").read_text().strip()


def publish(artifacts: Path, text: str, model: str = MODEL) -> None:
    """Write CURRENT as training does: a temporary file renamed over it."""
    temporary = artifacts / model / ".CURRENT.tmp"
    temporary.write_text(text + "\n")
    temporary.replace(artifacts / model / "CURRENT")


def copy_version(artifacts: Path, name: str, model: str = MODEL, into: Path | None = None) -> Path:
    """A copy of the good version called `name` (its manifest says so too), so it loads as it is.

    `into` puts the copy somewhere else (outside the artifacts tree) under the same name.
    """
    source = artifacts / model / good_version(artifacts, model)
    target = (into or artifacts / model) / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    edit_manifest(target, lambda m: m.update(version=name))
    return target


def edit_manifest(version_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = version_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def record_checksum(version_dir: Path, name: str) -> None:
    """Re-record one file's sha256 and size, as a (mistaken) training run would have."""
    edit_manifest(version_dir, lambda m: m["files"].update({name: file_entry(version_dir / name)}))


def tiny_onnx(input_name: str, width: int) -> bytes:
    """A valid graph with the heart model's output but an input of another name or width."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", [input_name], [HEART_ONNX_OUTPUT], axes=[1], keepdims=0)],
        "not-the-heart-model",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(HEART_ONNX_OUTPUT, TensorProto.FLOAT, ["batch"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# --- the artifact faults ---------------------------------------------------------------------------


def _flipped_byte(artifacts: Path, _: Path) -> Made:
    path = copy_version(artifacts, "fault-flipped-byte") / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return Made("fault-flipped-byte", "model.onnx")


def _truncated(artifacts: Path, _: Path) -> Made:
    path = copy_version(artifacts, "fault-truncated") / "model.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Made("fault-truncated", "model.onnx")


def _missing(artifacts: Path, _: Path) -> Made:
    (copy_version(artifacts, "fault-missing-file") / "weights.pt").unlink()
    return Made("fault-missing-file", "weights.pt")


def _wrong_checksum(artifacts: Path, _: Path) -> Made:
    directory = copy_version(artifacts, "fault-wrong-checksum")
    edit_manifest(directory, lambda m: m["files"]["preprocess.joblib"].update(sha256="0" * 64))
    return Made("fault-wrong-checksum", "preprocess.joblib")


def _newer_schema(artifacts: Path, _: Path) -> Made:
    directory = copy_version(artifacts, "fault-newer-schema")
    edit_manifest(directory, lambda m: m.update(schema_version=m["schema_version"] + 1))
    return Made("fault-newer-schema", "manifest.json")


def _no_such_version(_: Path, __: Path) -> Made:
    return Made("20991231T235959Z-deadbeef", "20991231T235959Z-deadbeef")


def _onnx_mismatch(artifacts: Path, _: Path) -> Made:
    directory = copy_version(artifacts, "fault-onnx-inputs")
    (directory / "model.onnx").write_bytes(tiny_onnx(HEART_ONNX_INPUT, 12))  # 12 columns, not 13
    record_checksum(directory, "model.onnx")  # every checksum right: only the graph's input is wrong
    return Made("fault-onnx-inputs", "model.onnx")


def _self_check(artifacts: Path, _: Path) -> Made:
    directory = copy_version(artifacts, "fault-self-check")
    path = directory / "reference.json"
    reference = json.loads(path.read_text())
    probability = reference["probabilities"][3]
    reference["probabilities"][3] = probability + 0.05 if probability < 0.5 else probability - 0.05
    path.write_text(json.dumps(reference))
    record_checksum(directory, "reference.json")
    return Made("fault-self-check", "reference.json")


ARTIFACT_FAULTS = [
    Fault("flipped-byte", "one byte of model.onnx flipped", _flipped_byte),
    Fault("truncated", "model.onnx cut to half its size", _truncated),
    Fault("missing-file", "weights.pt deleted", _missing),
    Fault("wrong-checksum", "manifest: preprocess.joblib's sha256 replaced by zeros", _wrong_checksum),
    Fault("newer-schema", "manifest: schema_version + 1", _newer_schema),
    Fault("no-such-version", "CURRENT names a version that does not exist", _no_such_version),
    Fault("onnx-inputs", "model.onnx: a valid graph taking [batch, 12], checksums fixed", _onnx_mismatch),
    Fault("self-check", "reference.json: one probability moved by 0.05, checksum fixed", _self_check),
]


# --- paths that try to leave the artifacts directory -----------------------------------------------


def _current_dotdot(artifacts: Path, _: Path) -> Made:
    return Made(f"../digits/{good_version(artifacts, 'digits')}", "CURRENT")


def _current_absolute(artifacts: Path, scratch: Path) -> Made:
    return Made(str(copy_version(artifacts, "fault-absolute", into=scratch)), "CURRENT")


def _current_symlink(artifacts: Path, scratch: Path) -> Made:
    outside = scratch / "CURRENT-elsewhere"
    outside.write_text(good_version(artifacts) + "\n")
    current = artifacts / MODEL / "CURRENT"
    current.unlink()
    current.symlink_to(outside)
    return Made("", "CURRENT")


def _version_symlink(artifacts: Path, scratch: Path) -> Made:
    outside = copy_version(artifacts, "fault-version-symlink", into=scratch)  # intact, but not ours
    link = artifacts / MODEL / "fault-version-symlink"
    link.symlink_to(outside, target_is_directory=True)
    return Made("fault-version-symlink", "fault-version-symlink")


def _file_symlink(artifacts: Path, scratch: Path) -> Made:
    directory = copy_version(artifacts, "fault-file-symlink")
    outside = scratch / "model.onnx"
    shutil.copy(directory / "model.onnx", outside)  # the very same bytes: only the link is wrong
    (directory / "model.onnx").unlink()
    (directory / "model.onnx").symlink_to(outside)
    return Made("fault-file-symlink", "model.onnx")


def _dir_symlink(artifacts: Path, scratch: Path) -> Made:
    directory = copy_version(artifacts, "fault-dir-symlink")
    outside = scratch / "report"
    shutil.copytree(directory / "report", outside)
    shutil.rmtree(directory / "report")
    (directory / "report").symlink_to(outside, target_is_directory=True)
    listed = json.loads((directory / "manifest.json").read_text())["files"]  # in the order they are checked
    return Made("fault-dir-symlink", next(name for name in listed if name.startswith("report/")))


def _listed_outside(artifacts: Path, _: Path) -> Made:
    directory = copy_version(artifacts, "fault-listed-outside")
    name = "../../digits/CURRENT"
    edit_manifest(directory, lambda m: m["files"].update({name: file_entry(artifacts / "digits" / "CURRENT")}))
    return Made("fault-listed-outside", name)


def _current_fifo(artifacts: Path, _: Path) -> Made:
    current = artifacts / MODEL / "CURRENT"
    current.unlink()
    os.mkfifo(current)  # reading it would block until someone writes: start-up or reload would hang
    return Made("", "CURRENT")


def _manifest_fifo(artifacts: Path, _: Path) -> Made:
    manifest = copy_version(artifacts, "fault-manifest-fifo") / "manifest.json"
    manifest.unlink()
    os.mkfifo(manifest)
    return Made("fault-manifest-fifo", "manifest.json")


PATH_FAULTS = [
    Fault("current-dotdot", "CURRENT is `../digits/<version>`", _current_dotdot),
    Fault("current-absolute", "CURRENT is an absolute path to an intact copy outside the tree", _current_absolute),
    Fault("current-symlink", "CURRENT is a symlink to a file outside the tree", _current_symlink),
    Fault("version-symlink", "the version directory is a symlink to an intact copy outside", _version_symlink),
    Fault("file-symlink", "model.onnx is a symlink to identical bytes outside the tree", _file_symlink),
    Fault("dir-symlink", "report/ is a symlink to an identical directory outside the tree", _dir_symlink),
    Fault("listed-outside", "the manifest lists `../../digits/CURRENT` (with its right checksum)", _listed_outside),
    Fault("current-fifo", "CURRENT is a named pipe (a read would block)", _current_fifo),
    Fault("manifest-fifo", "manifest.json is a named pipe (a read would block)", _manifest_fifo),
]


def apply(fault: Fault, artifacts: Path, scratch: Path) -> Made:
    """Build the fault and point heart/CURRENT at it."""
    scratch.mkdir(parents=True, exist_ok=True)
    made = fault.make(artifacts, scratch)
    if made.current:
        publish(artifacts, made.current)
    return made


def restore(artifacts: Path, version: str) -> None:
    """heart/CURRENT back to a regular file naming `version` (undoes every fault's CURRENT)."""
    current = artifacts / MODEL / "CURRENT"
    if current.is_symlink():
        current.unlink()
    publish(artifacts, version)


# --- start-up --------------------------------------------------------------------------------------


def private_copy(small_artifacts: Path, directory: Path) -> Path:
    """A copy of the small artifacts that a test may damage (symlinks copied as symlinks)."""
    artifacts = directory / "artifacts"
    shutil.copytree(small_artifacts, artifacts, symlinks=True)
    return artifacts


def json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def wait_exit(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        raise AssertionError("the service did not refuse to start") from None
    log = output(process)
    stop(process)
    return code, log


@dataclass(frozen=True)
class StartUp:
    """One `python -m service` run over a fault: how it ended and what it wrote."""

    made: Made
    code: int
    log: str
    url: str
    artifacts: Path
    scratch: Path


def run_start_up(fault: Fault, small_artifacts: Path, directory: Path) -> StartUp:
    artifacts, scratch = private_copy(small_artifacts, directory), directory / "outside"
    made = apply(fault, artifacts, scratch)
    process, url = start(artifacts, SERVICE_ACCESS_LOG="false")
    code, log = wait_exit(process)
    return StartUp(made, code, log, url, artifacts, scratch)


def start_all(faults: list[Fault], small_artifacts: Path, directory: Path) -> dict[str, Future[StartUp]]:
    """Every fault's start-up, three processes at a time (each is mostly interpreter start-up); a test
    takes its own with `.result()`, which re-raises whatever went wrong in that run."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return {fault.key: pool.submit(run_start_up, fault, small_artifacts, directory / fault.key) for fault in faults}


def check_start_up(fault: Fault, run: Future[StartUp]) -> None:
    """`python -m service` over the fault exited non-zero before it listened, and said which file."""
    result = run.result()
    made, log = result.made, result.log
    assert result.code != 0, log
    critical = [line for line in json_lines(log) if line["level"] == "CRITICAL"]
    assert len(critical) == 1, log
    (line,) = critical
    assert line["model"] == MODEL, line
    assert made.names in line["file"] and made.names in line["message"], line
    assert "ready" not in [entry.get("message") for entry in json_lines(log)], "it reported ready"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{result.url}/health/live", timeout=1)  # nothing listens on its port
    reason = normalise(line["reason"], result.artifacts, result.scratch)
    named = normalise(line["file"], result.artifacts, result.scratch)
    record(fault.key, "startup", f"exit {result.code}; the CRITICAL line names `{named}`: {reason}")


# --- hot reload ------------------------------------------------------------------------------------


@dataclass
class Server:
    """A one-worker service with the admin route, over a private artifacts copy it was started on."""

    process: subprocess.Popen[str]
    url: str
    artifacts: Path
    scratch: Path
    version: str

    def scrape(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text


@contextmanager
def reload_server(small_artifacts: Path, directory: Path) -> Iterator[Server]:
    artifacts = private_copy(small_artifacts, directory)
    process, url = start(artifacts, SERVICE_ADMIN_TOKEN=TOKEN, SERVICE_RELOAD_INTERVAL="0", SERVICE_ACCESS_LOG="false")
    try:
        wait_ready(process, url)
        yield Server(process, url, artifacts, directory / "outside", good_version(artifacts))
    finally:
        stop(process)


def check_reload(fault: Fault, server: Server) -> None:
    """The fault published under a running service: the reload is refused with the reason, counted as a
    failure, logged, and the old version keeps answering; CURRENT put back, all is as before."""
    reloads = "modelserve_reloads_total"
    before = server.scrape()
    made = apply(fault, server.artifacts, server.scratch)
    try:
        response = httpx.post(f"{server.url}/admin/reload", headers=AUTH, timeout=60)
        prediction = httpx.post(f"{server.url}/predict/heart", json=PATIENT, timeout=10)
        ready = httpx.get(f"{server.url}/health/ready", timeout=10)
        after = server.scrape()
    finally:
        restore(server.artifacts, server.version)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "reload_failed"
    (field,) = error["fields"]
    assert field["field"] == MODEL
    assert made.names in field["reason"], field
    assert field["reason"].endswith(f"still serving {server.version}"), field
    assert prediction.status_code == 200 and prediction.json()["version"] == server.version
    assert ready.status_code == 200
    for result, added in (("failure", 1), ("success", 0)):
        counted = total(after, reloads, model=MODEL, result=result) - total(before, reloads, model=MODEL, result=result)
        assert counted == added, (result, counted)
    assert total(after, "modelserve_model_info", model=MODEL, version=server.version) == 1
    logged = [
        line
        for line in json_lines(output(server.process))
        if line.get("logger") == "service.reload" and line["level"] == "ERROR" and made.names in str(line.get("file"))
    ]
    assert logged, "the refusal was not logged with the file"
    again = httpx.post(f"{server.url}/admin/reload", headers=AUTH, timeout=60)  # CURRENT restored: nothing to do
    assert again.status_code == 200 and {m["result"] for m in again.json()["models"]} == {"unchanged"}
    reason = normalise(field["reason"], server.artifacts, server.scratch)
    record(fault.key, "reload", f"409, the old version answers 200, failures +1: {reason}")


# --- the table -------------------------------------------------------------------------------------

ROWS: dict[str, dict[str, str]] = {}
WHAT = {fault.key: fault.what for fault in ARTIFACT_FAULTS + PATH_FAULTS}
_HEX = re.compile(r"\b[0-9a-f]{16,}\b")
_TIME_VERSION = re.compile(r"\b20\d{6}T\d{6}Z-[0-9a-f]{8}\b")


def normalise(text: str, artifacts: Path, scratch: Path) -> str:
    """A reason without what differs between runs (digests, version names, temporary paths)."""
    text = text.replace(str(artifacts.resolve()), "artifacts").replace(str(artifacts), "artifacts")
    text = text.replace(str(scratch.resolve()), "<outside>").replace(str(scratch), "<outside>")
    text = _TIME_VERSION.sub("<version>", _HEX.sub("<sha256>", text))
    return text.replace("|", "\\|")


def record(key: str, column: str, outcome: str) -> None:
    ROWS.setdefault(key, {})[column] = outcome


def write_table() -> str:
    keys = [fault.key for fault in ARTIFACT_FAULTS + PATH_FAULTS if fault.key in ROWS]
    lines = [
        "| fault | what was done | start-up (`python -m service`) | hot reload (`POST /admin/reload`) |",
        "|---|---|---|---|",
        *(
            f"| {key} | {WHAT[key]} | {ROWS[key].get('startup', 'not run')} | {ROWS[key].get('reload', 'not run')} |"
            for key in keys
        ),
    ]
    table = "\n".join(lines) + "\n"
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(table)
    print(f"\n{table}")
    return table


def fault_fixtures(faults: list[Fault], name: str) -> tuple[Any, Any, Any]:
    """The three module fixtures a fault suite needs, for `faults`: the table written when the module
    ends, every start-up run (in parallel, once), and one server whose reloads meet each fault.
    A test module binds them as `fault_table, start_ups, server = fault_fixtures(...)`."""

    @pytest.fixture(scope="module", autouse=True)
    def fault_table() -> Iterator[None]:
        yield
        write_table()

    @pytest.fixture(scope="module")
    def start_ups(small_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[StartUp]]:
        return start_all(faults, small_artifacts, tmp_path_factory.mktemp(f"start-up-{name}"))

    @pytest.fixture(scope="module")
    def server(small_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
        with reload_server(small_artifacts, tmp_path_factory.mktemp(f"reload-{name}")) as running:
            yield running

    return fault_table, start_ups, server
