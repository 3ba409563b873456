"""Shared helpers for the host scenario's testinfra checks.

Tests run on the controller: `host` reaches into the server through the
inventory's docker connection; `probe` and `playbook` act from outside it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).resolve().parents[1]))
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", SCENARIO.parents[1]))
# Overridable so the same checks can run against another disposable server.
INVENTORY = Path(os.environ.get("CONNECT_TEST_INVENTORY", SCENARIO / "inventory"))
SERVER = os.environ.get("CONNECT_TEST_SERVER", "connect-molecule-default")
REGISTRY_PORT = 5000

testinfra_hosts = [f"ansible://{SERVER}?ansible_inventory={INVENTORY}"]

# The collection's own code (the filters' logic) for computing expectations.
sys.path.insert(0, str(PROJECT / ".collections"))


def harness_vars() -> dict:
    """The demo/test inventory's values (the only place they differ from production)."""
    path = PROJECT / "inventories" / "demo" / "group_vars" / "connect_servers" / "harness.yml"
    return yaml.safe_load(path.read_text())


def role_defaults(role: str) -> dict:
    return yaml.safe_load((PROJECT / "roles" / role / "defaults" / "main.yml").read_text())


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


RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)"
    r"\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


class PlaybookRun:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        m = RECAP.search(self.output)
        self.recap = {k: int(v) for k, v in m.groupdict().items() if k != "host"} if m else None

    def __repr__(self) -> str:  # shown by pytest on failure
        return f"PlaybookRun(rc={self.rc}, recap={self.recap})\n{self.output[-4000:]}"


@pytest.fixture(scope="session")
def playbook():
    """Run site.yml (or another playbook) against the scenario's server."""

    def run(*args: str, playbook: str = "site.yml", extra_vars: dict | None = None) -> PlaybookRun:
        cmd = ["ansible-playbook", "-i", str(INVENTORY), str(PROJECT / playbook), *args]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        return PlaybookRun(subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=900))

    return run
