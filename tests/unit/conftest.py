"""Shared test set-up for the collection's unit tests.

The repository root is the collection root; the symlink
.collections/ansible_collections/connect/platform -> ../../.. (made by
`make venv`, not committed) gives it the path Ansible expects, and this puts
.collections first on sys.path so the tests import the collection as
ansible_collections.connect.platform.

The fixtures read the filters' sidecar docs and run Ansible's own CLIs
(ansible-doc, ansible-playbook) from the same virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"
FILTER_DIR = REPO / "plugins" / "filter"
BIN = Path(sys.executable).parent

if not (COLLECTIONS / "ansible_collections" / "connect" / "platform").is_dir():
    raise RuntimeError(
        f"{COLLECTIONS}/ansible_collections/connect/platform is missing: run `make venv` "
        "(or: mkdir -p .collections/ansible_collections/connect && "
        "ln -sfn ../../.. .collections/ansible_collections/connect/platform)"
    )
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


def _load_sidecar(name):
    import yaml

    with open(FILTER_DIR / f"{name}.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _example_results(examples):
    """The ``# =>`` results in an EXAMPLES string, continuation lines joined.

    A result starting with ``{`` that is valid JSON is parsed; any other
    result is one line of text (its lines joined with single spaces).
    """
    blocks = []
    current = None
    for line in examples.splitlines():
        stripped = line.strip()
        if stripped.startswith("# =>"):
            current = [stripped[len("# =>") :].strip()]
            blocks.append(current)
        elif current is not None and stripped.startswith("#    "):
            current.append(stripped[1:].strip())
        else:
            current = None
    results = []
    for lines in blocks:
        if lines[0].startswith("{"):
            try:
                results.append(json.loads("\n".join(lines)))
                continue
            except json.JSONDecodeError:
                pass
        results.append(" ".join(lines))
    return results


@pytest.fixture
def sidecar():
    """Load plugins/filter/<name>.yml: {DOCUMENTATION, EXAMPLES, RETURN}."""
    return _load_sidecar


@pytest.fixture
def example_results():
    """Parse the ``# =>`` results out of an EXAMPLES string."""
    return _example_results


@pytest.fixture
def run_ansible():
    """Run an Ansible CLI from this virtualenv against the collection."""
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_STDOUT_CALLBACK": "default",
        }
    )

    def run(tool, *args):
        executable = BIN / tool
        if not executable.exists():
            pytest.skip(f"{tool} is not installed next to {sys.executable}")
        return subprocess.run(
            [str(executable), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(REPO),
            timeout=300,
            check=False,
        )

    return run
