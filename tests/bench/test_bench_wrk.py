"""The wrk driver: Lua script generation and parsing of wrk's real output."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import wrk as wrk_module
from bench.wrk import (
    WrkError,
    find_wrk,
    lua_long_string,
    lua_script,
    parse_output,
    parse_text,
    run_wrk,
    wrk_command,
)

# Captured from `python -m bench --no-service --duration 3` (wrk 4.1.0, Debian) against the tutorial app.
TUTORIAL_OUTPUT = """\
Running 3s test @ http://127.0.0.1:40979/predict/heart
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   231.32ms  354.98ms   2.17s    88.42%
    Req/Sec   253.97     41.16   313.00     70.00%
  Latency Distribution
     50%  106.85ms
     75%  131.57ms
     90%  679.03ms
     99%    1.77s\x20
  759 requests in 3.00s, 170.48KB read
Requests/sec:    252.80
Transfer/sec:     56.78KB
BENCH_RESULT {"requests":759,"duration_us":3002409,"bytes":174570,"errors":{"connect":0,"read":0,"write":0,\
"status":0,"timeout":0},"latency_us":{"min":5849.0,"mean":231318.521,"max":2169477.0,"stdev":354983.538,\
"p50":106849.0,"p75":131565.0,"p90":679030.0,"p95":1124352.0,"p99":1767529.0,"p999":2169477.0}}
"""

# Captured from wrk against `python -m http.server` on a route it does not have (every answer a 404).
NOT_FOUND_OUTPUT = """\
Running 1s test @ http://127.0.0.1:18765/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.71ms    2.70ms  24.16ms   84.96%
    Req/Sec     1.12k    73.37     1.21k    70.00%
  Latency Distribution
     50%    2.88ms
     75%    4.94ms
     90%    7.21ms
     99%   12.36ms
  1116 requests in 1.00s, 566.72KB read
  Non-2xx or 3xx responses: 1116
Requests/sec:   1113.49
Transfer/sec:    565.44KB
BENCH_RESULT {"requests":1116,"duration_us":1002255,"bytes":580320,"errors":{"connect":0,"read":0,"write":0,\
"status":1116,"timeout":0},"latency_us":{"min":268.0,"mean":3708.913,"max":24156.0,"stdev":2695.348,\
"p50":2884.0,"p75":4939.0,"p90":7207.0,"p95":8767.0,"p99":12361.0,"p999":22945.0}}
"""


def test_parse_output_reads_the_done_hook_line() -> None:
    result = parse_output(TUTORIAL_OUTPUT)
    assert result.requests == 759
    assert result.duration_s == pytest.approx(3.002409)
    assert result.requests_per_s == pytest.approx(759 / 3.002409)
    assert result.latency_ms["p50"] == pytest.approx(106.849)
    assert result.latency_ms["p95"] == pytest.approx(1124.352)
    assert result.latency_ms["p99"] == pytest.approx(1767.529)
    assert result.latency_ms["max"] == pytest.approx(2169.477)
    assert result.error_count == 0
    assert result.bytes_read == 174570


def test_the_hook_agrees_with_the_text_report() -> None:
    result = parse_output(TUTORIAL_OUTPUT)
    text = result.extra["text"]
    assert text["requests"] == result.requests
    assert text["requests_per_s"] == pytest.approx(result.requests_per_s, rel=1e-3)
    for key in ("p50", "p75", "p90", "p99"):
        assert text["latency_ms"][key] == pytest.approx(result.latency_ms[key], rel=5e-3)


def test_parse_text_reads_units_and_errors() -> None:
    text = parse_text(NOT_FOUND_OUTPUT)
    assert text["requests"] == 1116
    assert text["duration_s"] == pytest.approx(1.0)
    assert text["bytes_read"] == round(566.72 * 1024)
    assert text["requests_per_s"] == pytest.approx(1113.49)
    assert text["transfer_bytes_per_s"] == pytest.approx(565.44 * 1024)
    assert text["latency_ms"] == pytest.approx({"p50": 2.88, "p75": 4.94, "p90": 7.21, "p99": 12.36})
    assert text["latency_mean_ms"] == pytest.approx(3.71)
    assert text["latency_max_ms"] == pytest.approx(24.16)
    assert text["non_2xx"] == 1116
    text = parse_text("  Socket errors: connect 0, read 3, write 0, timeout 12\n")
    assert text["socket_errors"] == {"connect": 0, "read": 3, "write": 0, "timeout": 12}


def test_non_2xx_answers_count_as_errors() -> None:
    result = parse_output(NOT_FOUND_OUTPUT)
    assert result.errors["status"] == 1116
    assert result.error_count == 1116


def test_output_without_the_hook_line_is_an_error() -> None:
    without = "\n".join(line for line in TUTORIAL_OUTPUT.splitlines() if not line.startswith("BENCH_RESULT"))
    with pytest.raises(WrkError, match="BENCH_RESULT"):
        parse_output(without)


@pytest.mark.parametrize("text", ["plain", "a ]] b", "]=] and ]==] and ]]", "\nstarts with a newline", ""])
def test_lua_long_string_never_closes_early(text: str) -> None:
    literal = lua_long_string(text)
    level = literal.index("[", 1)  # the opening bracket is "[" + "=" * level + "["
    closing = "]" + "=" * (level - 1) + "]"
    assert literal.endswith(closing)
    inner = literal[level + 2 : -len(closing)]
    assert inner == text  # Lua drops the first newline after the opening bracket
    assert closing not in text


def test_lua_script_for_a_post_body() -> None:
    body = json.dumps({"instances": [[1, 2]], "note": "]]"}).encode()
    script = lua_script("POST", body)
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script
    assert body.decode() in script
    assert "function done(summary, latency, requests)" in script
    for p in ("50.0", "95.0", "99.0", "99.9"):
        assert f"latency:percentile({p})" in script
    assert "function request" not in script  # a static request: no Lua per request


def test_lua_script_for_a_get_has_no_body() -> None:
    script = lua_script("GET")
    assert 'wrk.method = "GET"' in script
    assert "wrk.body" not in script


def test_wrk_command() -> None:
    command = wrk_command(
        "/usr/bin/wrk", "http://127.0.0.1:1/x", Path("s.lua"), duration_s=10, connections=32, threads=1
    )
    assert command == [
        "/usr/bin/wrk",
        "-t1",
        "-c32",
        "-d10s",
        "--timeout=30s",
        "--latency",
        "-s",
        "s.lua",
        "http://127.0.0.1:1/x",
    ]


def test_missing_wrk_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wrk_module.shutil, "which", lambda _name: None)
    with pytest.raises(WrkError, match="apt-get install -y wrk"):
        find_wrk()


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[bytes] = []  # noqa: RUF012 - shared by the handler instances of one test

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if len(_Recorder.bodies) < 5:
            _Recorder.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[int]:
    _Recorder.bodies = []
    _Recorder.protocol_version = "HTTP/1.1"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_the_generated_script_runs_in_wrk(recorder: int, tmp_path: Path) -> None:
    """The Lua is valid for wrk, sends the body byte for byte, and its done() hook prints a result."""
    body = json.dumps({"instances": [{"thal": "fixed", "ca": None}] * 3, "x": "]] ]=]"}).encode()
    result, wrk_cpu = run_wrk(
        find_wrk(),
        f"http://127.0.0.1:{recorder}/predict",
        lua_script("POST", body),
        tmp_path,
        "probe",
        duration_s=1,
        connections=2,
        threads=1,
    )
    assert result.requests > 0
    assert result.error_count == 0
    assert _Recorder.bodies and all(b == body for b in _Recorder.bodies)
    assert wrk_cpu >= 0
    assert (tmp_path / "probe.lua").is_file()
    assert "BENCH_RESULT" in (tmp_path / "probe.out").read_text()
