"""Shared helpers for the host scenario's testinfra checks.

Tests run on the controller: `host` reaches into the server through the
inventory's docker connection; `probe` and `playbook` act from outside it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).resolve().parents[1]))
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", SCENARIO.parents[1]))
# The scenario's server, then the demo's group_vars (the harness values) without
# the demo's host. Overridable so the same checks can run against another
# disposable server: CONNECT_TEST_INVENTORY=inventories/demo (sources separated by ':').
INVENTORIES = [
    Path(source)
    for source in os.environ.get(
        "CONNECT_TEST_INVENTORY",
        os.pathsep.join([str(SCENARIO / "inventory"), str(PROJECT / "inventories" / "demo" / "harness_vars.yml")]),
    ).split(os.pathsep)
]
INVENTORY = INVENTORIES[0]  # the one that names the server (testinfra's connection)
SERVER = os.environ.get("CONNECT_TEST_SERVER", "connect-molecule-default")
REGISTRY_PORT = 5000

testinfra_hosts = [f"ansible://{SERVER}?ansible_inventory={INVENTORY}"]

# The collection's own code (the filters' logic) for computing expectations.
sys.path.insert(0, str(PROJECT / ".collections"))


def harness_vars() -> dict:
    """The demo/test inventory's values (the only place they differ from production)."""
    path = PROJECT / "inventories" / "demo" / "group_vars" / "connect_servers" / "harness.yml"
    return yaml.safe_load(path.read_text())


def inventory_args(option: str = "-i") -> list[str]:
    """Every inventory source, each after ``option``."""
    return [arg for source in INVENTORIES for arg in (option, str(source))]


def role_defaults(role: str) -> dict:
    return yaml.safe_load((PROJECT / "roles" / role / "defaults" / "main.yml").read_text())


def role_vars(role: str) -> dict:
    """A role's vars/main.yml (its internal names, read rather than copied; Jinja left unrendered)."""
    return yaml.safe_load((PROJECT / "roles" / role / "vars" / "main.yml").read_text())


# The stack's contract (compose_stack's defaults): the names and ports the
# roles use, read from their one owner rather than copied here.
CONTRACT = role_defaults("compose_stack")
SERVICES = CONTRACT["compose_stack_services"]
CONTAINER = {key: service["container"] for key, service in SERVICES.items()}
PORT = {key: service.get("port") for key, service in SERVICES.items()}
DATABASE = CONTRACT["compose_stack_database"]["name"]
# The app instances outside peak season (app1, app2) and their containers.
APPS = [f"{CONTAINER['app']}{i}" for i in (1, 2)]


def on_host(path: str) -> str:
    """A contract path with compose_stack_root filled in."""
    return path.replace("{{ compose_stack_root }}", CONTRACT["compose_stack_root"])


UPSTREAM_FILE = "/".join((on_host(CONTRACT["compose_stack_app_upstream"]["dir"]), CONTRACT["compose_stack_app_upstream"]["file"]))
VOLUMES = {name: on_host(path) for name, path in CONTRACT["compose_stack_volumes"].items()}


def secret(host, name: str) -> str:
    return host.check_output(f"cat /opt/connect/secrets/{name}")


def started_at(host, *containers: str) -> dict:
    out = host.check_output("docker inspect -f '{{.Name}} {{.State.StartedAt}}' " + " ".join(containers))
    return dict(line.lstrip("/").split(" ", 1) for line in out.splitlines())


def server_address() -> str:
    """The server's address on the outer bridge, as another machine sees it."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", SERVER],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def tcp_answers(address: str, port: int, timeout: float = 2.0) -> bool:
    """True when a TCP handshake with address:port completes."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


# The run as the tests read it, shared with tests/integration.
sys.path.insert(0, str(PROJECT / "tests" / "integration"))
from playbook_run import PlaybookRun  # noqa: E402


@pytest.fixture(scope="session")
def playbook():
    """Run site.yml (or another playbook) against the scenario's server."""

    def run(*args: str, playbook: str = "site.yml", extra_vars: dict | None = None) -> PlaybookRun:
        cmd = ["ansible-playbook", *inventory_args(), str(PROJECT / playbook), *args]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        return PlaybookRun(subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=900, check=False))

    return run


# --- the edge: nginx as a user reaches it, through ports published on 127.0.0.1 ---
EDGE_HTTPS = os.environ.get("CONNECT_TEST_HTTPS", "https://127.0.0.1:18443")
EDGE_HTTP = os.environ.get("CONNECT_TEST_HTTP", "http://127.0.0.1:18080")
LOADGEN = PROJECT / "benchmarks" / "loadgen.py"


class Answer:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.headers}, {self.body[:300]!r})"


def edge(path: str, method: str = "GET", body=None, headers: dict | None = None, base: str = EDGE_HTTPS, timeout: float = 15) -> Answer:
    """One request to nginx (self-signed certificate: not verified here; the
    TLS checks look at the handshake itself). Redirects are not followed."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    url = urlsplit(base)
    if url.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return Answer(resp.status, dict(resp.getheaders()), resp.read())
    finally:
        conn.close()


def loadgen(*args: str, duration: float, background: bool = False, stop_file: bool = False):
    """Run benchmarks/loadgen.py against the edge; returns its JSON summary
    (or, with `background`, the Popen: its summary comes from
    loadgen_result(); with `stop_file`, proc.stop() ends it early)."""
    import tempfile

    out = Path(tempfile.mkstemp(prefix="loadgen-", suffix=".json")[1])
    cmd = [sys.executable, str(LOADGEN), "--url", EDGE_HTTPS, "--insecure", "--duration", str(duration), "--json", str(out), *args]
    if stop_file:
        stop = Path(tempfile.mkdtemp(prefix="loadgen-")) / "stop"
        cmd += ["--stop-file", str(stop)]
    if background:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc.json_path = out
        if stop_file:
            proc.stop = stop.touch
        return proc
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    print(proc.stderr)
    return json.loads(out.read_text())


def loadgen_result(proc) -> dict:
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode in (0, 1), err
    print(err)
    return json.loads(proc.json_path.read_text())


def wait_healthy(host, container: str, timeout: int = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = host.run("docker inspect -f '{{.State.Health.Status}}' " + container).stdout.strip()
        if status == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"{container} not healthy within {timeout} s (last: {status})")


# --- Parts: the scenario's checks in a declared order, each runnable alone ---
# Read-only parts first, then the parts that change the server, in this
# order (each leaves the server as it found it, and puts it back with a
# converge if one of its tests failed, so a failure does not skew the next
# part). A module's part is its file name without `test_`.
# CONNECT_TEST_PARTS=release,restarts (or `make test-part PART=...`) runs only those.
PARTS = (
    "host",
    "docker",
    "data_tier",
    "backup",
    # After parts that take longer than UFW's 30 s SSH window: the host part's logins would refuse its port-22 check.
    "exposure",
    "status",
    "maintenance",
    "emergency",
    "playbook",
    "monitoring",
    "edge",
    "letsencrypt",
    "durability",
    "restarts",
    "release",
    # After the documented operations (the release part's deploys, rollback, restart.yml, rotate.yml).
    "powercut",
    "logs",
    "dr",
)
SELECTED_PARTS = [p for p in os.environ.get("CONNECT_TEST_PARTS", "").replace(",", " ").split() if p]


def _part(item) -> str:
    return Path(str(item.fspath)).stem.removeprefix("test_")


def pytest_collection_modifyitems(config, items):
    unknown = sorted({_part(item) for item in items} - set(PARTS)) + sorted(set(SELECTED_PARTS) - set(PARTS))
    if unknown:
        raise pytest.UsageError(f"test part(s) {', '.join(unknown)} not in conftest.PARTS {PARTS}: add them in their order")
    if SELECTED_PARTS:
        deselected = [item for item in items if _part(item) not in SELECTED_PARTS]
        items[:] = [item for item in items if _part(item) in SELECTED_PARTS]
        config.hook.pytest_deselected(items=deselected)
    # Stable: within a part, the file's own order.
    items.sort(key=lambda item: PARTS.index(_part(item)))


_FAILED_PARTS: set[str] = set()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        _FAILED_PARTS.add(_part(item))
    return report


@pytest.fixture(scope="module", autouse=True)
def restore_after_a_failed_part(request, playbook):
    """A part that changes the server names RESTORE (the site.yml arguments
    that put it back to the inventory's state); when one of its tests failed,
    that converge runs so the next part starts from a known server."""
    yield
    restore = getattr(request.module, "RESTORE", None)
    part = Path(str(request.module.__file__)).stem.removeprefix("test_")
    if restore is not None and part in _FAILED_PARTS:
        run = playbook(*restore)
        print(f"part {part} failed: the server was put back with site.yml {' '.join(restore)} (rc={run.rc}, recap={run.recap})")


# --- the alert sinks the server reaches at its gateway (harness.yml names them) ---
WEBHOOK_PORT = 18026  # Slack's webhook at /slack, the dead man's switch's heartbeats at /heartbeat
SMTP_PORT = 18025
HEARTBEAT_PATH = "/heartbeat"


class Sinks:
    """What the server's Alertmanager sent: Slack posts, e-mails, and each heartbeat's arrival (monotonic time)."""

    def __init__(self):
        self.posts: list[dict] = []
        self.mails: list = []
        self.heartbeats: list[float] = []


@pytest.fixture(scope="session")
def sinks():
    """A Slack-style webhook and an SMTP server on the machine, for the whole session (the monitoring and
    power-cut parts read them)."""
    import email
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller

    got = Sinks()

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == HEARTBEAT_PATH:
                got.heartbeats.append(time.monotonic())
            else:
                got.posts.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    class Mailbox:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            got.mails.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    web = ThreadingHTTPServer(("0.0.0.0", WEBHOOK_PORT), Webhook)  # noqa: S104 (the server reaches it at its gateway)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    smtp = Controller(Mailbox(), hostname="0.0.0.0", port=SMTP_PORT)  # noqa: S104
    smtp.start()
    yield got
    smtp.stop()
    web.shutdown()


def seconds_of(duration: str) -> int:
    """A Prometheus-style duration of one unit (10s, 1m, 2h) in seconds."""
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]
