"""benchmarks/loadgen.py against a local stand-in of the test app.

The stand-in is a ThreadingHTTPServer on 127.0.0.1 (HTTP/1.1 keep-alive) with
/api/health, /api/items (GET, POST), /api/slow?ms=N; it can answer a cycle of
behaviours (500, 429, 404, 302, a reset, a truncated body), switch from v1 to
v2 after N requests, and close idle keep-alive connections like nginx does.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "loadgen.py"

_spec = importlib.util.spec_from_file_location("loadgen", SCRIPT)
loadgen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loadgen)


# --------------------------------------------------------------------------- the stand-in app


class AppState:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.version = "v1"
        self.switch_after = None  # requests 1..N answer v1, later ones v2
        self.pattern = None  # behaviours cycled over the requests: ok, 500, 429, 404, 302, reset, truncate
        self.seen = []  # (method, path, headers, body)


class AppHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # headers and body leave in one write (flushed after each request), no Nagle/delayed-ACK stall

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def reply(self, status, doc, version, extra=None):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", version)
        self.send_header("X-App-Instance", "app1")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def dispatch(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with state.lock:
            state.count += 1
            n = state.count
            version = state.version if state.switch_after is None else ("v1" if n <= state.switch_after else "v2")
            behaviour = state.pattern[(n - 1) % len(state.pattern)] if state.pattern else "ok"
            state.seen.append((self.command, self.path, dict(self.headers), body))
        url = urlsplit(self.path)
        if behaviour == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if behaviour == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.send_header("X-App-Version", version)
            self.end_headers()
            self.wfile.write(b'{"items": [')
            self.close_connection = True
            return
        if behaviour in ("500", "429", "404"):
            self.reply(int(behaviour), {"error": behaviour}, version)
            return
        if behaviour == "302":
            self.reply(302, {}, version, {"Location": "/elsewhere"})
            return
        if url.path == "/api/health":
            self.reply(200, {"status": "healthy", "version": version, "instance": "app1"}, version)
        elif url.path == "/api/items" and self.command == "GET":
            self.reply(200, {"items": [], "count": 0}, version)
        elif url.path == "/api/items" and self.command == "POST":
            self.reply(201, {"id": n, "name": json.loads(body)["name"]}, version)
        elif url.path == "/api/slow":
            time.sleep(int(parse_qs(url.query)["ms"][0]) / 1000)
            self.reply(200, {"slept": True}, version)
        else:
            self.reply(404, {"error": "not found"}, version)


class IdleClosingHandler(AppHandler):
    timeout = 0.1  # closes a keep-alive connection idle for 0.1 s, like nginx's keepalive_timeout


class V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class App:
    def __init__(self, handler=AppHandler, host="127.0.0.1"):
        self.server = (V6Server if ":" in host else ThreadingHTTPServer)((host, 0), handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.state = self.server.state = AppState()
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app():
    server = App()
    yield server
    server.close()


@pytest.fixture
def run(tmp_path):
    """Run loadgen.main in-process; (exit status, JSON summary, list of records)."""

    def go(*args, retry=False):
        out, recs = tmp_path / "summary.json", tmp_path / "records.jsonl"
        for f in (out, recs):
            f.unlink(missing_ok=True)
        extra = [] if retry else ["--no-retry"]
        rc = loadgen.main([*map(str, args), *extra, "--json", str(out), "--records", str(recs)])
        summary = json.loads(out.read_text()) if out.exists() else None
        records = [json.loads(line) for line in recs.read_text().splitlines()] if recs.exists() else None
        return rc, summary, records

    return go


def main_status(args):
    try:
        return loadgen.main(args)
    except SystemExit as exc:  # argparse
        return exc.code


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_consistent(summary, records):
    """The counts add up, whatever happened."""
    n = summary["requests"]
    assert set(summary["outcomes"]) == set(loadgen.OUTCOMES)
    assert sum(summary["outcomes"].values()) == n
    assert sum(k["count"] for k in summary["by_kind"].values()) == n
    assert sum(k["ok"] for k in summary["by_kind"].values()) == summary["outcomes"]["ok"]
    allowed = summary["outcomes"]["http_429"] if summary["config"]["allow_429"] else 0
    assert summary["failed"] == n - summary["outcomes"]["ok"] - allowed
    assert summary["rate_limited"] == summary["outcomes"]["http_429"]
    assert len(summary["errors_sample"]) == min(20, summary["failed"])
    if records is not None:
        assert len(records) == n
        for outcome in loadgen.OUTCOMES:
            assert sum(r["outcome"] == outcome for r in records) == summary["outcomes"][outcome]
        for r in records:
            assert set(r) == {"kind", "method", "path", "start", "end", "status", "outcome", "version", "instance", "error", "retried"}
            assert r["end"] >= r["start"]
            assert (r["error"] is None) == (r["outcome"] == "ok")
        assert sum(v for v in summary["versions"].values()) == sum(r["version"] is not None for r in records)


# --------------------------------------------------------------------------- safety and usage


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1:8443",
        "http://example.com",
        "http://127.0.0.1.nip.io",
        "http://127.0.0.2:8080",
        "https://[::2]:8443",
        "ftp://127.0.0.1",
        "http://user:pw@127.0.0.1",
        "127.0.0.1:8443",
    ],
)
def test_refuses_non_local_targets(url, capsys):
    assert main_status(["--url", url, "--duration", "1", "--rate", "1"]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["https://127.0.0.1:8443", "http://localhost", "https://[::1]:8443/prefix/", "HTTP://LOCALHOST:8080"])
def test_accepts_local_targets(url):
    scheme, host, port, base = loadgen.check_target(url)
    assert host in ("127.0.0.1", "localhost", "::1") and port in (8443, 80, 8080)
    assert scheme in ("http", "https") and base in ("", "/prefix")


def test_refusal_from_the_command_line():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", "https://10.0.0.1:8443", "--duration", "5", "--rate", "10"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "refusing target host '10.0.0.1'" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--duration", "901", "--rate", "1"],
        ["--duration", "0", "--rate", "1"],
        ["--rate", "1"],  # --duration is required
        ["--duration", "1"],  # --rate or --concurrency is required
        ["--duration", "1", "--rate", "1", "--concurrency", "2"],
        ["--duration", "1", "--rate", "1", "--max-requests", "200001"],
        ["--duration", "1", "--rate", "1", "--mix", "get=1,delete=1"],
        ["--duration", "1", "--rate", "1", "--mix", "get=0"],
        ["--duration", "1", "--rate", "1", "--header", "no colon"],
        ["--duration", "1", "--rate", "1", "--client-ips", "2", "--header", "X-Forwarded-For: 1.2.3.4"],
        ["--duration", "1", "--rate", "1", "--timeout", "0"],
    ],
)
def test_usage_errors_exit_2(args):
    assert main_status(["--url", "http://127.0.0.1:9", *args]) == 2


def test_existing_stop_file_is_a_usage_error(tmp_path):
    stop = tmp_path / "stop"
    stop.touch()
    assert main_status(["--url", "http://127.0.0.1:9", "--duration", "1", "--rate", "1", "--stop-file", str(stop)]) == 2


def test_help_documents_every_option(capsys):
    assert main_status(["--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--url",
        "--duration",
        "--max-requests",
        "--rate",
        "--concurrency",
        "--max-inflight",
        "--mix",
        "--slow-ms",
        "--seed",
        "--insecure",
        "--timeout",
        "--header",
        "--client-ips",
        "--allow-429",
        "--stop-file",
        "--json",
        "--records",
        "--no-fail-exit",
        "dropped_by_client",
        "exit status",
    ):
        assert option in text


# --------------------------------------------------------------------------- classification and counts


def test_http_and_connection_outcomes(app, run):
    app.state.pattern = ["ok", "500", "429", "404", "reset", "truncate", "302"]
    rc, s, records = run("--url", app.url, "--concurrency", 1, "--duration", 20, "--max-requests", 14, "--mix", "get=1", "--timeout", 5)
    assert rc == 1
    expected = ["ok", "http_5xx", "http_429", "http_4xx", "reset", "reset", "other_error"] * 2
    assert [r["outcome"] for r in records] == expected
    assert [r["status"] for r in records[:4]] == [200, 500, 429, 404]
    assert records[4]["status"] is None and records[5]["status"] is None
    assert s["outcomes"] == {
        "ok": 2,
        "http_429": 2,
        "http_4xx": 2,
        "http_5xx": 2,
        "timeout": 0,
        "reset": 4,
        "refused": 0,
        "tls": 0,
        "other_error": 2,
        "dropped_by_client": 0,
    }
    assert s["failed"] == 12 and s["rate_limited"] == 2 and s["requests"] == 14
    assert s["stopped_by"] == "max_requests"
    assert_consistent(s, records)
    assert any("-> http_5xx (500)" in e for e in s["errors_sample"])
    # after each reset the next request reconnected and succeeded
    assert s["connections"]["opened"] >= 5


def test_a_reused_connection_closed_before_any_answer_is_resent_once(app, run):
    # Every second request finds its (reused) connection closed without an
    # answer, as when nginx's reload closes idle keep-alive connections.
    app.state.pattern = ["ok", "reset"]
    rc, s, records = run("--url", app.url, "--concurrency", 1, "--duration", 20, "--max-requests", 6, "--mix", "get=1", retry=True)
    assert rc == 0, s["errors_sample"]
    assert s["outcomes"]["ok"] == 6 and s["failed"] == 0
    assert s["connections"]["retried_on_reused"] == 5
    assert [r["retried"] for r in records] == [False] + [True] * 5
    assert_consistent(s, records)
    # A cut-off answer (bytes already came back) is never resent.
    app.state.pattern = ["ok", "truncate"]
    app.state.count = 0
    rc, s, records = run("--url", app.url, "--concurrency", 1, "--duration", 20, "--max-requests", 4, "--mix", "get=1", retry=True)
    assert rc == 1 and s["connections"]["retried_on_reused"] == 0 and s["outcomes"]["reset"] == 2


def test_ipv6_loopback(run):
    try:
        app = App(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        rc, s, records = run("--url", app.url, "--concurrency", 1, "--duration", 5, "--max-requests", 3, "--header", "X-Test: v6")
    finally:
        app.close()
    assert rc == 0 and s["outcomes"]["ok"] == 3
    assert app.state.seen[0][2]["Host"] == f"[::1]:{app.server.server_address[1]}"


def test_refused(run):
    rc, s, records = run("--url", f"http://127.0.0.1:{free_port()}", "--concurrency", 1, "--duration", 5, "--max-requests", 3)
    assert rc == 1
    assert s["outcomes"]["refused"] == 3 and s["failed"] == 3
    assert_consistent(s, records)


def test_timeout(app, run):
    rc, s, records = run(
        "--url", app.url, "--concurrency", 2, "--duration", 5, "--max-requests", 2, "--mix", "slow=1", "--slow-ms", 1500, "--timeout", 0.3
    )
    assert rc == 1
    assert s["outcomes"]["timeout"] == 2 and s["outcomes"]["ok"] == 0
    assert all(0.25 < r["end"] - r["start"] < 1.2 for r in records)
    assert_consistent(s, records)


def test_tls_against_a_plain_http_port(app, run):
    url = app.url.replace("http://", "https://")
    rc, s, records = run("--url", url, "--insecure", "--concurrency", 1, "--duration", 5, "--max-requests", 2)
    assert rc == 1
    assert s["outcomes"]["tls"] == 2
    assert_consistent(s, records)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI for a self-signed certificate")
def test_https_self_signed(tmp_path, run):
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    app = App()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    app.server.socket = ctx.wrap_socket(app.server.socket, server_side=True)
    try:
        url = app.url.replace("http://", "https://")
        rc, s, records = run("--url", url, "--insecure", "--concurrency", 2, "--duration", 5, "--max-requests", 20)
        assert rc == 0 and s["outcomes"]["ok"] == 20 and s["connections"]["opened"] == 2
        rc, s, records = run("--url", url, "--concurrency", 1, "--duration", 5, "--max-requests", 2)
        assert rc == 1 and s["outcomes"]["tls"] == 2
        assert "certificate verify failed" in records[0]["error"]
    finally:
        app.close()


def test_counts_add_up_with_a_mixed_workload(app, run):
    app.state.pattern = ["ok"] * 7 + ["500", "429", "reset"]
    rc, s, records = run(
        "--url", app.url, "--concurrency", 4, "--duration", 10, "--max-requests", 300, "--mix", "get=60,post=25,slow=10,health=5",
        "--slow-ms", 5, "--seed", 3,
    )  # fmt: skip
    assert rc == 1
    assert s["requests"] == 300
    assert s["outcomes"]["ok"] == 210 and s["outcomes"]["http_5xx"] == 30 and s["outcomes"]["http_429"] == 30
    assert s["outcomes"]["reset"] == 30
    assert set(s["by_kind"]) == {"get", "post", "slow", "health"}
    assert_consistent(s, records)
    assert s["versions"] == {"v1": 270} and s["instances"] == {"app1": 270}
    paths = {(r["method"], r["path"]) for r in records}
    assert paths == {("GET", "/api/items"), ("POST", "/api/items"), ("GET", "/api/slow?ms=5"), ("GET", "/api/health")}
    for kind in s["by_kind"].values():
        assert kind["p50_ms"] <= kind["p90_ms"] <= kind["p99_ms"] <= kind["max_ms"]


def test_mix_is_deterministic_and_headers_are_sent(app, run):
    args = ["--url", app.url, "--concurrency", 1, "--duration", 10, "--max-requests", 60, "--mix", "get=50,post=30,health=20"]
    s1, r1 = run(*args, "--seed", 7, "--client-ips", 3, "--header", "X-Test: yes")[1:]
    s2, r2 = run(*args, "--seed", 7)[1:]
    s3, r3 = run(*args, "--seed", 8)[1:]
    kinds = [r["kind"] for r in r1]
    assert kinds == [r["kind"] for r in r2] != [r["kind"] for r in r3]
    assert 15 <= kinds.count("get") <= 45 and kinds.count("post") >= 8 and kinds.count("health") >= 4
    first = app.state.seen[:60]
    assert {h.get("X-Forwarded-For") for _method, _path, h, _body in first} == {"198.18.0.1", "198.18.0.2", "198.18.0.3"}
    assert all(h.get("X-Test") == "yes" for _method, _path, h, _body in first)
    assert all("X-Forwarded-For" not in h for _method, _path, h, _body in app.state.seen[60:])
    posts = [json.loads(b) for m, _path, _headers, b in first if m == "POST"]
    assert posts and all(p["name"].startswith("loadgen-7-") for p in posts)


# --------------------------------------------------------------------------- versions, exit codes


def test_version_timeline(app, run):
    app.state.switch_after = 30
    rc, s, records = run("--url", app.url, "--concurrency", 1, "--duration", 10, "--max-requests", 60, "--mix", "health=1")
    assert rc == 0
    assert s["versions"] == {"v1": 30, "v2": 30}
    t1, t2 = s["version_timeline"]["v1"], s["version_timeline"]["v2"]
    assert list(s["version_timeline"]) == ["v1", "v2"]
    assert t1["first_start"] <= t1["first_end"] <= t1["last_end"] <= t2["first_start"] <= t2["first_end"] <= t2["last_end"]
    assert t1["last_start"] <= t1["last_end"] and t2["last_start"] <= t2["last_end"]
    assert abs(t1["first_start"] - time.time()) < 60  # Unix epoch seconds
    assert t1["last_end"] == max(r["end"] for r in records if r["version"] == "v1")
    assert t2["first_start"] == min(r["start"] for r in records if r["version"] == "v2")


def test_exit_codes(app, run):
    base = ["--url", app.url, "--concurrency", 2, "--duration", 10, "--max-requests", 10]
    assert run(*base)[0] == 0
    app.state.pattern = ["ok", "429"]
    rc, s = run(*base)[:2]
    assert rc == 1 and s["failed"] == 5 and s["rate_limited"] == 5
    rc, s, records = run(*base, "--allow-429")
    assert rc == 0 and s["failed"] == 0 and s["rate_limited"] == 5 and s["errors_sample"] == []
    assert_consistent(s, records)
    app.state.pattern = ["ok", "500"]
    assert run(*base, "--allow-429")[0] == 1
    rc, s = run(*base, "--no-fail-exit")[:2]
    assert rc == 0 and s["failed"] == 5


# --------------------------------------------------------------------------- open loop


def test_open_loop_holds_the_rate_with_slow_requests(app, run):
    rate, duration = 80, 3.0
    rc, s, records = run(
        "--url", app.url, "--rate", rate, "--duration", duration, "--mix", "health=75,slow=25", "--slow-ms", 1500, "--seed", 5
    )
    assert rc == 0, s["errors_sample"]
    assert_consistent(s, records)
    assert s["stopped_by"] == "duration"
    assert abs(s["requests"] - rate * duration) <= 1
    assert abs(s["rps_achieved"] - rate) <= 0.1 * rate
    assert s["outcomes"]["dropped_by_client"] == 0
    slow = [r for r in records if r["kind"] == "slow"]
    assert len(slow) >= 30 and all(r["end"] - r["start"] >= 1.5 for r in slow)
    # the actual launches: the rate measured from them, in each half of the run, and no stalls
    starts = sorted(r["start"] for r in records)
    span = starts[-1] - starts[0]
    assert abs((len(starts) - 1) / span - rate) <= 0.1 * rate
    mid = starts[0] + span / 2
    first_half = sum(t < mid for t in starts)
    assert abs(first_half - len(starts) / 2) <= 0.1 * len(starts) / 2
    # No stall: a launch blocked behind a slow request would wait 1.5 s; a busy CI machine may delay one by ~0.1 s.
    assert max(b - a for a, b in zip(starts, starts[1:], strict=False)) < 0.5
    # slow requests were in flight while the schedule went on
    assert sum(r["start"] > slow[0]["start"] and r["start"] < slow[0]["end"] for r in records) >= 0.9 * rate * 1.5
    assert s["drain_s"] >= 0.5  # the last slow requests were awaited


def test_open_loop_counts_what_the_inflight_cap_drops(app, run):
    rc, s, records = run(
        "--url", app.url, "--rate", 20, "--duration", 1, "--max-inflight", 2, "--mix", "slow=1", "--slow-ms", 1500, "--timeout", 5
    )
    assert rc == 1
    assert s["outcomes"]["ok"] == 2 and s["outcomes"]["dropped_by_client"] == 18
    assert s["failed"] == 18 and s["requests"] == 20
    assert s["by_kind"]["slow"]["count"] == 20
    assert all(r["status"] is None for r in records if r["outcome"] == "dropped_by_client")
    assert_consistent(s, records)


def test_open_loop_max_requests(app, run):
    rc, s, records = run("--url", app.url, "--rate", 50, "--duration", 10, "--max-requests", 25)
    assert rc == 0 and s["requests"] == 25 and s["stopped_by"] == "max_requests"
    assert 0.4 <= s["duration_s"] <= 0.7
    assert_consistent(s, records)


def test_idle_keepalive_closed_by_the_server_is_not_a_failure(run):
    app = App(IdleClosingHandler)
    try:
        rc, s, records = run("--url", app.url, "--rate", 5, "--duration", 1.2, "--mix", "health=1")
    finally:
        app.close()
    assert rc == 0, s["errors_sample"]
    assert s["requests"] == 6 and s["outcomes"]["ok"] == 6
    assert s["connections"]["stale_discarded"] >= 3


# --------------------------------------------------------------------------- early stop (real processes)


def spawn(*args):
    return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_stop_file_ends_the_run_and_waits_for_in_flight(app, tmp_path):
    stop = tmp_path / "stop"
    proc = spawn("--url", app.url, "--rate", 20, "--duration", 60, "--mix", "health=1,slow=1", "--slow-ms", 800, "--stop-file", stop)
    time.sleep(1.0)
    stop.touch()
    t = time.monotonic()
    out, err = proc.communicate(timeout=15)
    assert time.monotonic() - t < 3
    assert proc.returncode == 0, err
    s = json.loads(out)
    assert s["stopped_by"] == "stop_file"
    assert 0.8 < s["duration_s"] < 2.0
    assert s["failed"] == 0 and s["outcomes"]["ok"] == s["requests"] >= 15
    assert s["in_flight_abandoned"] == 0
    assert "stopped by stop_file" in err


def test_sigterm_ends_the_run_and_waits_for_in_flight(app):
    proc = spawn("--url", app.url, "--rate", 20, "--duration", 60, "--mix", "slow=1", "--slow-ms", 800)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    s = json.loads(out)
    assert s["stopped_by"] == "signal:SIGTERM"
    assert s["outcomes"]["ok"] == s["requests"] >= 15 and s["failed"] == 0
    assert s["drain_s"] >= 0.3  # requests launched just before the signal were answered, not cut off


def test_closed_loop_throughput_and_keepalive(app):
    proc = spawn("--url", app.url, "--concurrency", 8, "--duration", 2, "--mix", "health=1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    s = json.loads(out)
    assert s["stopped_by"] == "duration"
    assert s["failed"] == 0
    assert s["connections"]["opened"] == 8  # one keep-alive connection per worker
    assert s["rps_achieved"] >= 300, s["rps_achieved"]
