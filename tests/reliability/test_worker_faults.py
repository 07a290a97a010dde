"""Workers dying under load: SIGKILL of one of two uvicorn workers, and SIGTERM of the whole service.

SIGKILL: uvicorn's supervisor replaces the worker; clients lose at most the requests that worker held
(one per connection it had), the counters stay exact (a dead worker's counts persist in its mmap file,
so the scrape holds every answered prediction, plus at most those the worker counted but never sent),
and the live gauges reflect only running workers (service.metrics_dir removes a dead pid's files).

SIGTERM: every request the workers had accepted is answered 200; the server's own counts and access
log, read after it exited, match what the clients received one for one.

SIGKILL of the supervisor: the workers exit too (service.supervision) instead of serving on as orphans.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.metrics_dir import pid_is_running, sweep_dead_workers
from tests.reliability.faults import copy_version, good_version, private_copy, publish
from tests.reliability.workers import (
    Load,
    is_ready,
    live_gauge_pids,
    read_metrics_dir,
    shut_down,
    summed,
    wait_for,
    wait_workers_ready,
    workers,
)
from tests.service.processes import output, start, total, wait_ready

CLIENTS = 8
PATIENT = {"age": 61, "sex": 1, "cp": 4, "chol": 250}


@pytest.fixture
def artifacts(small_artifacts: Path, tmp_path: Path) -> Path:
    return private_copy(small_artifacts, tmp_path)


@pytest.fixture
def two_workers(artifacts: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    metrics = tmp_path / "metrics"
    process, url = start(
        artifacts,
        SERVICE_WORKERS="2",
        SERVICE_METRICS_DIR=str(metrics),
        SERVICE_RELOAD_INTERVAL="0.2",
        SERVICE_DRAIN_SECONDS="30",
    )
    try:
        wait_ready(process, url)
        pids = wait_workers_ready(process, metrics)
        yield {"process": process, "url": url, "metrics": metrics, "pids": pids}
    finally:
        shut_down(process)


def test_sigkill_of_a_worker_under_load(two_workers: dict[str, Any], artifacts: Path) -> None:
    process, url, metrics, first = (two_workers[k] for k in ("process", "url", "metrics", "pids"))
    load = Load(url, [("/predict/heart", PATIENT, 1)] * CLIENTS, stop_at_first_error=False).start()
    try:
        wait_for(lambda: load.answered() >= 300, "300 answers before the kill")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        def replacement() -> set[int] | None:
            now = workers(process.pid)
            return now if len(now) == 2 and victim not in now else None

        replaced = wait_for(replacement, "a replacement worker")
        (newcomer,) = replaced - first
        wait_for(lambda: is_ready(metrics, newcomer), "the replacement to load and check its models")
        answered_then = load.answered()
        wait_for(lambda: load.answered() >= answered_then + 300, "300 answers after the replacement")
    finally:
        load.stop()
    failed = load.count(lambda o: o.status is None)
    answered = load.answered()
    assert load.count(lambda o: o.status not in (200, None)) == 0, "no HTTP error, only lost connections"
    assert failed <= CLIENTS, f"{failed} requests lost: more than the connections the worker could hold"
    assert process.poll() is None

    exposition = httpx.get(f"{url}/metrics", timeout=10).text
    # Counters: a dead worker's counts persist in its file, so nothing answered is missing, and at most
    # the requests it counted but never sent (the lost ones) are extra.
    predicted = total(exposition, "modelserve_predictions_total", model="heart")
    assert answered <= predicted <= answered + failed, (answered, failed, predicted)
    # The HTTP counter is incremented once the response has been sent (service.app), so a request the
    # killed worker had just answered may be missing: at most one per connection it held.
    http_200 = total(exposition, "litestar_requests_total", path="/predict/heart", status_code="200")
    assert answered - CLIENTS <= http_200 <= answered + failed, (answered, failed, http_200)
    victim_counts = read_metrics_dir(metrics, only_pid=victim)
    assert summed(victim_counts, "modelserve_predictions_total") > 0, "the killed worker was serving"
    print(f"SIGKILL: {answered} answered, {failed} lost, counted {predicted:.0f} (model), {http_200:.0f} (HTTP)")

    # Gauges: only running workers' files are left after a scrape, and they all say ready.
    assert live_gauge_pids(metrics) == replaced
    assert total(exposition, "modelserve_ready") == 1
    assert all(total(exposition, "modelserve_model_ready", model=m) == 1 for m in ("heart", "digits"))

    # model_info (livemax): after both live workers move to a new version, the old one reads 0. The
    # killed worker's file said 1 for it and, left in place, kept it at 1 in every scrape.
    old = good_version(artifacts)
    new = copy_version(artifacts, f"{old}-b").name
    publish(artifacts, new)

    def both_reloaded() -> str | None:
        scrape = httpx.get(f"{url}/metrics", timeout=10).text
        return scrape if total(scrape, "modelserve_reloads_total", model="heart", result="success") == 2 else None

    scrape = wait_for(both_reloaded, "both live workers to reload")
    assert total(scrape, "modelserve_model_info", model="heart", version=new) == 1
    assert total(scrape, "modelserve_model_info", model="heart", version=old) == 0, "a dead worker's gauge"
    assert "removed the live gauges of dead workers" in output(process)


def _json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_sigterm_under_load_answers_every_accepted_request(two_workers: dict[str, Any], digits_version: Path) -> None:
    process, url, metrics = two_workers["process"], two_workers["url"], two_workers["metrics"]
    digit = json.loads((digits_version / "reference.json").read_text())["inputs"][0]
    digit_batch = {"instances": [digit] * 200}
    jobs = [("/predict/heart", PATIENT, 1)] * (CLIENTS - 2) + [("/predict/digit/batch", digit_batch, 200)] * 2
    load = Load(url, jobs, stop_at_first_error=True).start()
    try:
        wait_for(lambda: load.answered() >= 300, "300 answers before the signal")
        signalled = time.time()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, output(process)
    finally:
        load.stop()
    log = output(process)
    outcomes = load.outcomes
    assert all(o.status in (200, None) for o in outcomes), "no HTTP error status"
    assert not [o for o in outcomes if o.status is None and o.sent < signalled], "sent before the signal, yet lost"

    # What the server did, read from its files and log after it exited, matches what clients received.
    answered = {o.request_id for o in outcomes if o.status == 200}
    logged = [line for line in _json_lines(log) if line.get("logger") == "service.access"]
    assert {line["status"] for line in logged} == {200}, "every request the workers handled was answered 200"
    assert {line["request_id"] for line in logged} == answered
    values = read_metrics_dir(metrics)
    heart_rows = sum(o.rows for o in outcomes if o.status == 200 and o.route == "/predict/heart")
    digit_rows = sum(o.rows for o in outcomes if o.status == 200 and o.route != "/predict/heart")
    assert summed(values, "modelserve_predictions_total", model="heart") == heart_rows
    assert summed(values, "modelserve_predictions_total", model="digits") == digit_rows

    # Requests were in flight while the workers were shutting down (else this proves nothing).
    # granian's supervisor logs "Shutting down granian" on the signal; uvicorn's workers "Shutting down".
    shutting = min(_epoch(line["ts"]) for line in _json_lines(log) if line["message"].startswith("Shutting down"))
    straddling = [o for o in outcomes if o.status == 200 and o.sent < shutting < o.done]
    assert straddling, "no request was in flight when the workers began to shut down"
    lost = sum(o.status is None for o in outcomes)
    print(f"SIGTERM: {len(answered)} answered, {len(straddling)} across the shutdown, {lost} refused after it")


def test_workers_stop_when_the_supervisor_is_killed(two_workers: dict[str, Any]) -> None:
    """SIGKILL of the supervisor: the workers (told by the kernel, service.supervision) drain and exit,
    rather than serving on unsupervised and holding the port a restarted service must bind."""
    process, url, pids = two_workers["process"], two_workers["url"], two_workers["pids"]
    assert httpx.post(f"{url}/predict/heart", json=PATIENT, timeout=10).status_code == 200
    process.kill()
    process.wait()
    wait_for(lambda: not any(pid_is_running(pid) for pid in pids), "the orphaned workers to exit", timeout=30)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health/live", timeout=2)


def test_sweep_removes_only_the_live_gauges_of_exited_processes(tmp_path: Path) -> None:
    """service.metrics_dir on its own: exited and zombie pids lose their live-gauge files, nothing else."""
    exited = subprocess.Popen(["true"])
    exited.wait()  # reaped: the pid no longer exists
    zombie = subprocess.Popen(["true"])
    wait_for(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z", "a zombie")
    running = subprocess.Popen(["sleep", "30"])
    try:
        names = [
            *(f"gauge_{mode}_{exited.pid}.db" for mode in ("livemax", "livemin", "livesum", "liveall")),
            f"gauge_livemin_{zombie.pid}.db",
            f"counter_{exited.pid}.db",  # a dead worker's counts stay: they did happen
            f"gauge_max_{exited.pid}.db",  # not a live mode: prometheus_client keeps it too
            f"gauge_livemin_{running.pid}.db",
            f"gauge_livemax_{os.getpid()}.db",
        ]
        for name in names:
            (tmp_path / name).write_bytes(b"")
        assert sweep_dead_workers(tmp_path) == sorted({exited.pid, zombie.pid})
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names[5:])
        assert sweep_dead_workers(tmp_path) == []
    finally:
        running.kill()
        running.wait()
        zombie.wait()
