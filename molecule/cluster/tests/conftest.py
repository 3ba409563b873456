"""Shared helpers for the cluster scenario's checks.

Tests run on the controller and reach each server with `docker exec` (the
servers are the harness's systemd containers); a probe container on the
cluster's harness network is the "fourth address".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = PROJECT / "inventories" / "cluster"
HOSTS = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["connect_cluster"]["hosts"]
SERVERS = list(HOSTS)
ADDRESS = {name: host["connect_harness_ip"] for name, host in HOSTS.items()}
LAYOUT = yaml.safe_load((INVENTORY / "group_vars" / "connect_cluster" / "cluster.yml").read_text())
NETWORK = "connect-cluster"
# A fourth address on the servers' network, outside the cluster.
OUTSIDER = ADDRESS[SERVERS[0]].rsplit(".", 1)[0] + ".50"
PROBE_IMAGE = "localhost:5000/connect-harness/probe:1"
# What the servers pull the probe image as (the harness registry at their gateway).
SERVER_PROBE_IMAGE = ADDRESS[SERVERS[0]].rsplit(".", 1)[0] + ".1:5000/connect-harness/probe:1"

# The collection's own code (the layout's logic) for computing expectations.
sys.path.insert(0, str(PROJECT / ".collections"))
sys.path.insert(0, str(PROJECT / "tests" / "integration"))
from playbook_run import PlaybookRun  # noqa: E402


def role_defaults(role: str) -> dict:
    return yaml.safe_load((PROJECT / "roles" / role / "defaults" / "main.yml").read_text())


def run(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def on(server: str, command: str, check: bool = True, timeout: float = 120) -> str:
    """A shell command on a server; its stdout."""
    return run("docker", "exec", server, "sh", "-c", command, check=check, timeout=timeout).stdout


def nodes(server: str) -> list[dict]:
    """`docker node inspect` of every node, asked on one manager."""
    ids = on(server, "docker node ls -q").split()
    return json.loads(on(server, "docker node inspect " + " ".join(ids)))


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (subprocess.CalledProcessError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout} s (last: {last!r})")


@pytest.fixture(scope="session")
def playbook():
    """Run site.yml (or another playbook) against the cluster inventory."""

    def play(*args: str, playbook: str = "site.yml") -> PlaybookRun:
        cmd = ["ansible-playbook", "-i", str(INVENTORY), str(PROJECT / "playbooks" / playbook), *args]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=900, check=False)
        return PlaybookRun(proc)

    return play


@pytest.fixture(scope="session")
def outsider():
    """A probe container at a fourth address on the servers' network: tcp(address, port) -> answered."""
    name = "connect-cluster-outsider"
    run("docker", "rm", "-f", name, check=False)
    run("docker", "run", "-d", "--name", name, "--network", NETWORK, "--ip", OUTSIDER, PROBE_IMAGE, "sleep", "3600")

    def tcp(address: str, port: int) -> bool:
        probe = f"busybox nc -w 2 {address} {port} </dev/null >/dev/null 2>&1"
        return run("docker", "exec", name, "sh", "-c", probe, check=False).returncode == 0

    yield tcp
    run("docker", "rm", "-f", name, check=False)
