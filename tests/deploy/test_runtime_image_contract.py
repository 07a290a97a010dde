"""What deploy/Dockerfile's runtime stage relies on, proven without a Docker engine.

The static tests read the Dockerfile. The process test rebuilds the runtime stage as far as a machine
without Docker can: the files its COPY lines take, in a fresh venv with only the `[serve]` extra (no
torch, no training code), run as uid 10001 (when the tests run as root) from root-owned, read-only
files, with the image's environment and only a scratch directory writable, then predicts and runs the
image's HEALTHCHECK command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.deploy.manifests import DOCKERFILE, ROOT, Stage, dockerfile_stages

APP_UID = 10001
HEART_PATIENT = {
    "age": 80, "sex": 0, "cp": 1, "trestbps": 124, "chol": 300, "fbs": 1, "restecg": 2,
    "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": "fixed",
}  # fmt: skip
DIGIT_PIXELS = [
    0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
    0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
]  # fmt: skip


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages()


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def stage_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def pip_specs(stage: Stage) -> list[str]:
    """The requirement specs of every `pip install` in the stage's RUN lines (options dropped)."""
    specs = []
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if words[:2] == ["pip", "install"]:
                skip_next = False
                for word in words[2:]:
                    if skip_next:
                        skip_next = False
                    elif word in {"--extra-index-url", "--index-url", "-c", "-r"}:
                        skip_next = True
                    elif not word.startswith("-") and "$" not in word:  # options from build arguments
                        specs.append(word)
    return specs


def healthcheck_command(stage: Stage) -> list[str]:
    """The HEALTHCHECK's command as Docker runs it: exec form as is, shell form through /bin/sh -c."""
    (healthcheck,) = stage.all("HEALTHCHECK")
    _, _, command = healthcheck.partition("CMD ")
    assert command, healthcheck
    return json.loads(command) if command.startswith("[") else ["/bin/sh", "-c", command]


# --- the Dockerfile itself -------------------------------------------------------------------------------


def test_two_stages_build_then_slim_runtime(stages: list[Stage]) -> None:
    assert [(s.image, s.name) for s in stages] == [("${BASE_IMAGE}", "build"), ("${BASE_IMAGE}", "runtime")]
    # One base for both stages, a build argument: python:3.11-slim unless `make image` makes one.
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", DOCKERFILE.read_text(), flags=re.MULTILINE)


def test_build_stage_installs_train_extra_and_trains(stages: list[Stage]) -> None:
    build = stages[0]
    # The extra's dependencies (a layer that survives source changes), then the project without them.
    assert pip_specs(build) == [".[train]", "."]
    assert any("python -m training --artifacts-dir /artifacts" in run for run in build.all("RUN"))
    # torch must come as the CPU build: the pin lives in pyproject.toml, the build stage adds the index.
    assert any("TORCH_INDEX_URL" in arg and "/cpu" in arg for arg in build.all("ARG"))


def test_runtime_stage_installs_serve_extra_only(runtime: Stage) -> None:
    assert pip_specs(runtime) == [".[serve]"]
    text = " ".join(args for _, args in runtime.instructions)
    assert "[train]" not in text
    assert "torch" not in text
    copied = [args.split()[:-1] for args in runtime.all("COPY") if not args.startswith("--from")]
    assert sorted(src for sources in copied for src in sources) == ["README.md", "pyproject.toml", "service/"]


def test_runtime_stage_takes_the_artifacts_from_the_build_stage(runtime: Stage) -> None:
    env = stage_env(runtime)
    (from_build,) = [args for args in runtime.all("COPY") if args.startswith("--from=build")]
    assert from_build.split()[1:] == ["/artifacts", env["SERVICE_ARTIFACTS_DIR"]]


def test_runtime_stage_runs_as_non_root_on_a_read_only_root(runtime: Stage) -> None:
    (user,) = runtime.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) == APP_UID, "numeric, so that Kubernetes can check runAsNonRoot"
    assert gid.isdigit() and int(gid) != 0
    assert [kw for kw, _ in runtime.instructions].index("USER") > max(
        i for i, (kw, _) in enumerate(runtime.instructions) if kw == "RUN"
    ), "USER comes after every RUN"
    env = stage_env(runtime)
    # The only writable path the service needs is the metrics directory, under the /tmp tmpfs/emptyDir.
    assert env["SERVICE_METRICS_DIR"].startswith("/tmp/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_runtime_stage_listens_on_all_interfaces_at_the_default_port(runtime: Stage) -> None:
    env = stage_env(runtime)
    assert env["SERVICE_HOST"] == "0.0.0.0"
    assert int(env["SERVICE_PORT"]) == Settings().port
    # HTTP and the Open Inference Protocol's gRPC port, each the setting the image gives the service.
    assert int(env["SERVICE_GRPC_PORT"]) == Settings().grpc_port
    assert runtime.all("EXPOSE") == [f"{env['SERVICE_PORT']} {env['SERVICE_GRPC_PORT']}"]
    assert json.loads(runtime.all("CMD")[0]) == ["python", "-m", "service"], "exec form: PID 1 gets SIGTERM"
    # Every SERVICE_* variable the image sets is a real setting.
    known = {"SERVICE_" + name.upper() for name in Settings.model_fields}
    assert {key for key in env if key.startswith("SERVICE_")} <= known


def test_healthcheck_probes_readiness_with_python(runtime: Stage) -> None:
    command = healthcheck_command(runtime)
    assert command[:2] == ["python", "-c"], "exec form, with the image's python (no curl in the slim image)"
    assert "/health/ready" in command[2]
    assert "urllib.request" in command[2]


def test_hadolint_passes() -> None:
    """The Dockerfile linter (hadolint, from the dev extra) finds nothing; ignores are explained inline."""
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = DOCKERFILE.read_text().replace("WORKDIR /app", "RUN cd /app")
    done = subprocess.run([str(hadolint), "--no-color", "-"], input=broken, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "DL3003" in done.stdout, "hadolint is not a no-op"


def test_dockerignore_keeps_the_context_small() -> None:
    entries = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "artifacts/*", "bench-results", "tests"} <= entries
    assert "service" not in entries and "training" not in entries and "pyproject.toml" not in entries


# --- the runtime stage, rebuilt as a venv and run ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def snapshot(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*")}


def post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """A world-readable scratch root (pytest's tmp dirs are 0700, out of reach for uid 10001)."""
    root = Path(tempfile.mkdtemp(prefix="modelserve-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def build_runtime_venv(runtime: Stage, root: Path) -> Path:
    """The runtime stage's install step: its COPY sources into a context, `pip install <context>[serve]`
    into a fresh venv. Returns the venv's python."""
    context = root / "context"
    context.mkdir()
    for args in runtime.all("COPY"):
        if args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, context / source)
    (spec,) = pip_specs(runtime)
    assert spec.startswith(".")
    # The image's interpreter is a system-wide CPython 3.11 (python:3.11-slim). A per-user one (pyenv under
    # /root, mode 0700) cannot be run by uid 10001, so prefer the system's python3.11.
    base = shutil.which("python3.11", path="/usr/local/bin:/usr/bin") or sys.executable
    venv = root / "venv"
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(context) + spec.removeprefix(".")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return python


def install_image_files(artifacts: Path, root: Path, owner: int | None) -> tuple[Path, Path]:
    """/app with the artifacts (root-owned, read-only for the service) and the writable /tmp; returns both."""
    app = root / "app"
    app.mkdir()
    shutil.copytree(artifacts, app / "artifacts")
    for path in [app, *app.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    scratch = root / "tmp"  # the tmpfs / emptyDir
    scratch.mkdir()
    if owner is not None:
        os.chown(scratch, owner, owner)
    return app, scratch


def wait_ready(process: subprocess.Popen, base: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, f"service exited {process.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(base + "/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        assert time.monotonic() < deadline, f"not ready within {seconds} s"
        time.sleep(0.2)


def run_healthcheck(runtime: Stage, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """The image's HEALTHCHECK command, as Docker runs it (`python` found on the image's PATH)."""
    return subprocess.run(healthcheck_command(runtime), env=env, capture_output=True, check=False)


def assert_predictions(base: str) -> None:
    status, heart = post(base + "/predict/heart", HEART_PATIENT)
    assert status == 200
    assert 0.0 <= heart["probability"] <= 1.0
    assert heart["prediction"] in {0, 1}
    status, digit = post(base + "/predict/digit", {"pixels": DIGIT_PIXELS})
    assert status == 200
    assert len(digit["probabilities"]) == 10
    assert 0 <= digit["digit"] <= 9
    # Metrics work with the metrics directory as the only writable place.
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        assert "modelserve_predictions_total" in response.read().decode()


@pytest.mark.slow
def test_runtime_stage_serves_predictions_from_a_serve_only_venv(
    runtime: Stage, small_artifacts: Path, image_root: Path
) -> None:
    python = build_runtime_venv(runtime, image_root)
    # Nothing of the training half came along.
    for module in ("torch", "training", "sklearn", "pandas"):
        probe = subprocess.run(
            [str(python), "-c", f"import {module}"], capture_output=True, cwd=image_root, check=False
        )
        assert probe.returncode != 0, f"{module} is importable from the serve-only venv"

    as_app_user = os.geteuid() == 0 and not python.resolve().is_relative_to("/root")
    app, scratch = install_image_files(small_artifacts, image_root, APP_UID if as_app_user else None)
    port = free_port()
    env = {
        **stage_env(runtime),
        # The image's venv (/opt/venv in its PATH) is this one here.
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(python.parent.parent),
        # Loopback only on this machine; the image binds 0.0.0.0 inside its own network namespace.
        "SERVICE_HOST": "127.0.0.1",
        "SERVICE_PORT": str(port),
        "SERVICE_ARTIFACTS_DIR": str(app / "artifacts"),
        "SERVICE_METRICS_DIR": str(scratch / "metrics"),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
    }
    read_only = snapshot(python.parent.parent, app)
    # Logs to a file outside the image's paths: a pipe nobody reads would fill up and block the server.
    log = image_root / "service.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(python), "-m", "service"],
            cwd=app,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            **({"user": APP_UID, "group": APP_UID, "extra_groups": []} if as_app_user else {}),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, log)
        if as_app_user:
            status = Path(f"/proc/{process.pid}/status").read_text()
            assert re.search(rf"^Uid:\s+{APP_UID}\s", status, flags=re.MULTILINE), "not running as uid 10001"
        assert_predictions(base)
        check = run_healthcheck(runtime, env)
        assert check.returncode == 0, check.stderr
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # The HEALTHCHECK fails once the service is gone.
    assert run_healthcheck(runtime, env).returncode != 0
    # Nothing was written outside the scratch directory (the image's root filesystem is read-only).
    assert snapshot(python.parent.parent, app) == read_only
    assert (scratch / "metrics").is_dir()
