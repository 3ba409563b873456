"""The collection as users install it: built, installed, and its playbook
resolvable as connect.platform.site (not only from a checkout)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    colls = tmp_path_factory.mktemp("collections")
    # Away from the checkout's ansible.cfg, whose collections path already
    # holds connect.platform (the .collections link) and would skip the install.
    cfg = out / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(cfg))
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", out, ROOT],
        check=True,
        capture_output=True,
        cwd=out,
        env=env,
    )
    (tarball,) = out.glob("connect-platform-*.tar.gz")
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", colls, tarball],
        check=True,
        capture_output=True,
        cwd=out,
        env=env,
    )
    return colls, tarball


def test_tarball_leaves_out_the_test_harness(installed):
    colls = installed[0]
    root = colls / "ansible_collections" / "connect" / "platform"
    assert (root / "roles" / "host_baseline" / "meta" / "argument_specs.yml").is_file()
    assert (root / "playbooks" / "site.yml").is_file()
    for absent in ("molecule", "harness", ".collections", "tests", ".venv"):
        assert not (root / absent).exists(), absent


def test_installed_playbook_resolves_by_fqcn(installed, tmp_path):
    colls = installed[0]
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(colls), ANSIBLE_CONFIG=str(cfg))
    proc = subprocess.run(
        [BIN / "ansible-playbook", "connect.platform.site", "-i", ROOT / "inventories" / "production", "--list-tasks"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # away from the checkout and its ansible.cfg
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "connect.platform.host_baseline" in proc.stdout
    assert "connect.platform.docker_engine" in proc.stdout
    assert (
        str(colls)
        in subprocess.run(
            [BIN / "ansible-doc", "-t", "role", "connect.platform.host_baseline"], capture_output=True, text=True, env=env, check=False
        ).stdout
    )
