"""compose_stack's `secrets` entry point (connect.platform.secret_files) on
this machine (a temporary root, no server): a secret that protects data is
never replaced by a different value from the inventory unless the caller says
so; a password is; an empty value generates one once. The single-secret
`secret` entry point keeps its interface."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OLD = "a" * 64
NEW = "b" * 64

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the secret files are owned by root (group root)")

PLAY = """
- name: Keep a secret
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write or check the secret, and a password next to it
      ansible.builtin.include_role:
        name: connect.platform.compose_stack
        tasks_from: secrets
      vars:
        compose_stack_secret_items:
          - {name: redis_cache_password, value: ""}
          - name: app_encryption_key
            value: "{{ value }}"
            protected: "{{ protected }}"
            replace: "{{ replace }}"
      when: not single
    - name: Write or check the secret through the single-secret entry point
      ansible.builtin.include_role:
        name: connect.platform.compose_stack
        tasks_from: secret
      vars:
        compose_stack_secret_name: app_encryption_key
        compose_stack_secret_value: "{{ value }}"
        compose_stack_secret_protected: "{{ protected }}"
        compose_stack_secret_replace: "{{ replace }}"
      when: single
    - name: The templates read the values
      ansible.builtin.copy:
        content: "{{ compose_stack_secrets['app_encryption_key'] }}"
        dest: "{{ compose_stack_root }}/seen"
        mode: "0600"
      no_log: true
"""


@pytest.fixture(params=[False, True], ids=["secrets", "secret"])
def secret(tmp_path, request):
    (tmp_path / "secrets").mkdir(mode=0o700)
    playbook = tmp_path / "secret.yml"
    playbook.write_text(PLAY)
    path = tmp_path / "secrets" / "app_encryption_key"

    def run(value, protected=True, replace=False, check=False):
        extra = {"compose_stack_root": str(tmp_path), "value": value, "protected": protected, "replace": replace}
        extra["single"] = request.param
        extra["ansible_python_interpreter"] = sys.executable
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
        cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", json.dumps(extra)]
        if check:
            cmd.append("--check")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
        return proc.returncode, " ".join((proc.stdout + proc.stderr).split())

    return run, path


def test_a_protected_secret_is_not_replaced_without_the_override(secret):
    run, path = secret
    rc, out = run(OLD)
    assert rc == 0, out
    assert path.read_text() == OLD
    assert oct(path.stat().st_mode & 0o777) == "0o400"

    for check in (True, False):
        rc, out = run(NEW, check=check)
        assert rc != 0, out
        assert "app_encryption_key from the inventory differs from the one this server keeps" in out
        assert "-e app_encryption_key_replace=true" in out
        assert OLD not in out and NEW not in out
        assert path.read_text() == OLD

    rc, out = run(OLD)
    assert rc == 0 and "changed=0" in out, out

    rc, out = run(NEW, replace=True)
    assert rc == 0, out
    assert path.read_text() == NEW
    assert OLD not in out and NEW not in out


def test_a_password_takes_the_vaults_value(secret):
    run, path = secret
    assert run(OLD, protected=False)[0] == 0
    rc, out = run(NEW, protected=False)
    assert rc == 0, out
    assert path.read_text() == NEW
    # compose_stack_secrets, the dict the templates read, holds the new value.
    assert (path.parent.parent / "seen").read_text() == NEW


def test_an_empty_value_keeps_the_generated_secret(secret):
    run, path = secret
    assert run("", protected=True)[0] == 0
    generated = path.read_text()
    assert len(generated) == 40
    rc, out = run("", protected=True)
    assert rc == 0 and "changed=0" in out, out
    assert path.read_text() == generated
    assert (path.parent.parent / "seen").read_text() == generated
    assert generated not in out
