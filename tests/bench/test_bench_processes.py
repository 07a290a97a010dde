"""Process handling: /proc readings, readiness timing and start-up failures, the command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench.processes import (
    ServerError,
    children,
    cpu_seconds,
    free_port,
    launch,
    memory_mb,
    status_kb,
    stop,
    system_busy_seconds,
    worker_pids,
)
from bench.runner import bench_server, service_env, trim_log
from bench.scenarios import LoadSettings, Scenario
from bench.wrk import WrkError, find_wrk


def fake_proc(root: Path, processes: dict[int, tuple[int, int]]) -> Path:
    """A /proc with `pid: (ppid, rss_kb)` entries."""
    for pid, (ppid, rss) in processes.items():
        entry = root / str(pid)
        entry.mkdir(parents=True)
        (entry / "stat").write_text(f"{pid} (python -m x) S {ppid} 1 1 0 -1 0 0 0 0 0 150 50 0 0 20 0 1 0\n")
        (entry / "status").write_text(f"Name:\tpython\nVmHWM:\t{rss + 100} kB\nVmRSS:\t{rss} kB\nThreads:\t3\n")
    (root / "self").mkdir()
    return root


def test_single_process_server_is_its_own_worker(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {100: (1, 102_400), 200: (1, 5_000)})
    assert children(100, proc) == []
    assert worker_pids(100, proc) == [100]
    assert status_kb(100, "VmRSS", proc) == 102_400
    assert status_kb(999, "VmRSS", proc) is None
    memory = memory_mb(100, proc)
    assert memory == {
        "worker_rss_mb": 100.0,
        "worker_peak_rss_mb": pytest.approx(102_500 / 1024),
        "tree_rss_mb": 100.0,
        "workers": 1.0,
    }


def test_supervisor_with_workers_reports_the_largest_worker(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {100: (1, 20_480), 101: (100, 51_200), 102: (100, 102_400), 103: (101, 1_024)})
    assert children(100, proc) == [101, 102, 103]
    memory = memory_mb(100, proc)
    assert memory["worker_rss_mb"] == 100.0
    assert memory["tree_rss_mb"] == pytest.approx((20_480 + 51_200 + 102_400 + 1_024) / 1024)
    assert memory["workers"] == 3.0


def test_cpu_seconds_of_a_tree_and_of_the_machine(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {100: (1, 1), 101: (100, 1), 200: (1, 1)})
    ticks = os.sysconf("SC_CLK_TCK")
    assert cpu_seconds(100, proc) == pytest.approx(2 * (150 + 50) / ticks)  # 100 and its child, not 200
    (proc / "stat").write_text("cpu  100 10 50 9000 7 1 2 3 0 0\ncpu0 50 5 25 4500 3 0 1 1 0 0\n")
    assert system_busy_seconds(proc) == pytest.approx((100 + 10 + 50 + 1 + 2 + 3) / ticks)


def test_readings_of_this_process() -> None:
    assert memory_mb(os.getpid())["worker_rss_mb"] > 1
    assert cpu_seconds(os.getpid()) > 0
    assert 0 < free_port() < 65536


def test_service_env_sets_one_loopback_worker(tmp_path: Path) -> None:
    env = service_env(tmp_path, 1234, {"SERVICE_SERVER": "granian"})
    assert env["SERVICE_HOST"] == "127.0.0.1"
    assert env["SERVICE_PORT"] == "1234"
    assert env["SERVICE_WORKERS"] == "1"
    assert env["SERVICE_ARTIFACTS_DIR"] == str(tmp_path.resolve())
    assert env["SERVICE_SERVER"] == "granian"


def test_trim_log_keeps_head_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    trim_log(log, max_bytes=100, keep_lines=3)
    assert log.read_text().splitlines() == [
        "line 0",
        "line 1",
        "line 2",
        "... 994 lines cut by bench ...",
        "line 997",
        "line 998",
        "line 999",
    ]


@pytest.mark.slow
def test_launch_times_readiness_and_stops(tmp_path: Path) -> None:
    port = free_port()
    server = launch(
        "static",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        dict(os.environ),
        port,
        tmp_path / "static.log",
        ready_path="/",
    )
    assert server.ready_s is not None
    assert server.ready_s > 0
    assert server.process.poll() is None
    stop(server)
    assert server.process.poll() is not None


def test_a_server_that_dies_names_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('no artifacts here'); sys.exit(3)"]
    with pytest.raises(ServerError, match=r"exited with code 3(.|\n)*no artifacts here"):
        launch("broken", command, dict(os.environ), free_port(), tmp_path / "broken.log", timeout_s=30)


def test_main_without_wrk_exits_2_with_instructions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> str:
        raise WrkError("wrk is not installed: apt-get install -y wrk")

    monkeypatch.setattr(bench_main, "find_wrk", missing)
    assert bench_main.main(["--artifacts-dir", "nowhere"]) == 2
    assert "apt-get install -y wrk" in capsys.readouterr().err


def test_parse_args_defaults_and_checks() -> None:
    args = bench_main.parse_args([])
    assert (args.duration, args.connections, args.threads, args.batch_rows) == (10.0, 32, 1, 1000)
    with pytest.raises(SystemExit):
        bench_main.parse_args(["--service-env", "NO_EQUALS_SIGN"])


@pytest.mark.slow
def test_bench_server_records_a_failing_route_and_goes_on(tmp_path: Path) -> None:
    """A static server whose /health/ready is a file: GET works, POST answers 501."""
    (tmp_path / "www" / "health").mkdir(parents=True)
    (tmp_path / "www" / "health" / "ready").write_text("ok")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(tmp_path / "www"),
    ]
    scenarios = [
        Scenario("post", "POST /health/ready", "POST", "/health/ready", b"{}"),
        Scenario("get", "GET /health/ready", "GET", "/health/ready"),
    ]
    settings = LoadSettings(duration_s=1, warmup_s=0, connections=2, threads=1, quiet_wait_s=0, busy_retries=0)
    run = bench_server(
        "static", command, dict(os.environ), port, scenarios, find_wrk(), settings, tmp_path, log=lambda _line: None
    )
    assert run.ready_s is not None
    assert list(run.failures) == ["post"]
    assert "501" in run.failures["post"]
    assert [r.name for r in run.results] == ["get"]
    assert run.results[0].requests > 0
    assert run.memory_after["worker_rss_mb"] is not None
    assert run.exit_code is not None


def test_bench_server_records_a_server_that_never_starts(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "raise SystemExit('cannot load the model')"]
    run = bench_server(
        "broken", command, dict(os.environ), free_port(), [], "wrk", LoadSettings(), tmp_path, log=lambda _line: None
    )
    assert "cannot load the model" in run.failures["start"]
    assert run.results == []
