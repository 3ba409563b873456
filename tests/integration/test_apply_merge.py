"""compose_stack's `apply` entry point on this machine (a temporary root, no
server, no service started): the fragments of compose.d/ are read in one call
and merged; a service defined in two fragments, or a network declared
differently in two, fails the run naming both files, and nothing is written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _compose():
    if os.geteuid() != 0 or shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0


# Writing the project file needs root (owner root) and `docker compose config`; refusing does not.
needs_compose = pytest.mark.skipif(not _compose(), reason="root and docker compose check and own the project file")

PLAY = """
- name: Merge the fragments
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Merge only (no services)
      ansible.builtin.include_role:
        name: connect.platform.compose_stack
        tasks_from: apply
      vars:
        compose_stack_apply_services: []
"""

NETWORKS = {"backend": {"external": True}}
DB = {"services": {"db": {"image": "postgres:15", "networks": ["backend"]}}, "networks": NETWORKS}
CACHE = {"services": {"cache": {"image": "redis:7", "networks": ["backend"]}}, "networks": NETWORKS}


@pytest.fixture
def apply(tmp_path):
    (tmp_path / "compose.d").mkdir()
    playbook = tmp_path / "apply.yml"
    playbook.write_text(PLAY)

    def run(fragments):
        for name, doc in fragments.items():
            (tmp_path / "compose.d" / name).write_text("# a fragment\n" + yaml.safe_dump(doc))
        extra = {"compose_stack_root": str(tmp_path), "ansible_python_interpreter": sys.executable}
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
        cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", json.dumps(extra)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
        return proc.returncode, " ".join((proc.stdout + proc.stderr).split())

    return run, tmp_path / "docker-compose.production.yml"


@needs_compose
def test_fragments_are_merged_into_the_project(apply):
    run, project = apply
    rc, out = run({"db.yml": DB, "cache.yml": CACHE})
    assert rc == 0, out
    merged = yaml.safe_load(project.read_text())
    assert merged == {"name": "connect", "services": DB["services"] | CACHE["services"], "networks": NETWORKS, "secrets": {}, "volumes": {}}
    rc, out = run({})
    assert rc == 0 and "changed=0" in out, out


def test_a_service_in_two_fragments_is_refused(apply, tmp_path):
    run, project = apply
    other_db = {"services": {"db": {"image": "postgres:16"}}}
    rc, out = run({"db.yml": DB, "zz-other.yml": other_db})
    assert rc != 0, out
    assert f"service db is defined in both {tmp_path}/compose.d/db.yml and {tmp_path}/compose.d/zz-other.yml" in out
    assert not project.exists()


def test_a_network_declared_differently_is_refused(apply, tmp_path):
    run, project = apply
    rc, out = run({"db.yml": DB, "cache.yml": CACHE | {"networks": {"backend": {"internal": True}}}})
    assert rc != 0, out
    assert f"network backend is declared differently in {tmp_path}/compose.d/cache.yml and {tmp_path}/compose.d/db.yml" in out
    assert not project.exists()
