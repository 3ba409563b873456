"""Render a role's templates through Ansible itself (the role's defaults, compose_stack's contract,
then the test's overrides), for unit tests of the files they produce (Prometheus rules, Alertmanager)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).with_name("render_templates.yml")


def render(tmp: Path, templates: list, overrides: dict | None = None, role: str = "monitoring") -> Path:
    """Render `templates` (names under roles/<role>/templates) into tmp; returns tmp.

    A failed render raises with Ansible's output, so a test shows the template's error."""
    tmp.mkdir(parents=True, exist_ok=True)
    extra = dict(
        {"ansible_python_interpreter": sys.executable},
        **(overrides or {}),
        render_role=role,
        render_dest=str(tmp),
        render_templates=templates,
    )
    extra_file = tmp / "extra-vars.json"
    extra_file.write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", str(PLAYBOOK), "-e", "@" + str(extra_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"rendering {templates} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return tmp
