"""bench.mlserver's MLServer configuration: one process, the current heart version, the runtime beside it."""

from __future__ import annotations

import json
from pathlib import Path

from bench.mlserver import BOTH, RUNTIME, SERVICE_ONLY, mlserver_config
from bench.scenarios import service_scenarios


def test_config_serves_the_given_version_in_one_process(tmp_path: Path) -> None:
    version_dir = tmp_path / "artifacts" / "heart" / "20260101T000000Z-abc"
    version_dir.mkdir(parents=True)
    config = tmp_path / "mlserver"
    config.mkdir()
    mlserver_config(config, version_dir, 18123)
    settings = json.loads((config / "settings.json").read_text())
    assert settings["http_port"] == 18123
    assert settings["parallel_workers"] == 0  # MLServer's default of 1 dies at start-up with uvloop >= 0.22
    assert len({settings["http_port"], settings["grpc_port"], settings["metrics_port"]}) == 3
    model = json.loads((config / "heart" / "model-settings.json").read_text())
    assert model["parameters"]["uri"] == str(version_dir.resolve())
    module, _, cls = model["implementation"].rpartition(".")
    assert (config / "heart" / f"{module}.py").read_text() == RUNTIME.read_text()
    assert f"class {cls}(MLModel)" in RUNTIME.read_text()


def test_compared_scenarios_exist_in_bench(tmp_path: Path) -> None:
    """The scenario names bench.mlserver picks are bench's own (a renamed scenario must not vanish silently)."""
    from bench.payloads import Payloads

    payloads = Payloads(
        heart_one=b"{}", digit_one=b"{}", heart_batch=b"{}", digit_batch=b"{}",
        heart_version="v", digits_version="v", batch_rows=1000,
        v2_heart_one=b"{}", v2_heart_batch=b"{}", v2_heart_one_binary=(b"{}", 2), v2_heart_batch_binary=(b"{}", 2),
    )  # fmt: skip
    names = {scenario.name for scenario in service_scenarios(payloads)}
    assert set(BOTH + SERVICE_ONLY) <= names
