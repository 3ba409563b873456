"""The postgres role's choice of the app's login role (roles/postgres/tasks/logins.yml,
task "Decide the active login role"): its own set_fact run by ansible-playbook on
localhost over what the read task would have printed, one play per state. The real
rotation is tested on the disposable server (molecule part `release`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LOGINS = ROOT / "roles" / "postgres" / "tasks" / "logins.yml"
ROLES = ["connect", "connect_alt"]
ROTATING = {"postgres_owner_password": "the-old-one"}

# state: (read lines "role accepts may-login", previous kept?) -> (login, pgbouncer's list, set password?, lock)
CASES = {
    "no container yet": ([], {}, ("connect", {"connect": "current"}, True, [])),
    "first run": (["connect none absent", "connect_alt none absent"], {}, ("connect", {"connect": "current"}, True, [])),
    "steady": (["connect current t", "connect_alt none absent"], {}, ("connect", {"connect": "current"}, False, [])),
    "rotation: the idle role takes the new password": (
        ["connect previous t", "connect_alt none absent"],
        ROTATING,
        ("connect_alt", {"connect_alt": "current", "connect": "previous"}, True, []),
    ),
    "rotation resumed": (
        ["connect previous t", "connect_alt current t"],
        ROTATING,
        ("connect_alt", {"connect_alt": "current", "connect": "previous"}, False, []),
    ),
    "rotation finished: the old role is locked": (
        ["connect none t", "connect_alt current t"],
        {},
        ("connect_alt", {"connect_alt": "current"}, False, ["connect"]),
    ),
    "after": (["connect none f", "connect_alt current t"], {}, ("connect_alt", {"connect_alt": "current"}, False, [])),
    "the next rotation switches back": (
        ["connect none f", "connect_alt previous t"],
        ROTATING,
        ("connect", {"connect": "current", "connect_alt": "previous"}, True, []),
    ),
    "a new password (DR, a vault change) goes to the role that may log in": (
        ["connect none f", "connect_alt none t"],
        {},
        ("connect_alt", {"connect_alt": "current"}, True, []),
    ),
}


@pytest.fixture(scope="module")
def decided(tmp_path_factory):
    tasks = yaml.safe_load(LOGINS.read_text())
    decide = next(task for task in tasks if task["name"] == "Decide the active login role")
    show = {
        "ansible.builtin.debug": {
            "msg": "{{ [postgres_owner_login, postgres_owner_logins, __postgres_login_set_password, __postgres_logins_lock] | to_json }}"
        }
    }
    plays = [
        {
            "name": name,
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "__postgres_owner_login_roles": ROLES,
                "__postgres_logins_read": {"stdout_lines": lines},
                "compose_stack_secrets_previous": previous,
            },
            "tasks": [decide, show],
        }
        for name, (lines, previous, _expected) in CASES.items()
    ]
    work = tmp_path_factory.mktemp("logins")
    (work / "play.yml").write_text(yaml.safe_dump(plays))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    playbook = Path(sys.executable).with_name("ansible-playbook")
    proc = subprocess.run(
        [str(playbook), "-i", "localhost,", "-c", "local", str(work / "play.yml")],
        capture_output=True, text=True, env=env, cwd=work, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    return {play["play"]["name"]: json.loads(play["tasks"][1]["hosts"]["localhost"]["msg"]) for play in out["plays"]}


@pytest.mark.parametrize("state", list(CASES))
def test_the_login_role_follows_the_password_it_accepts(decided, state):
    login, logins, set_password, lock = CASES[state][2]
    assert decided[state] == [login, logins, set_password, lock]
