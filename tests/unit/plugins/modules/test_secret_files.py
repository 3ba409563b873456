"""Tests for plugins/modules/secret_files.py: main() on a temporary directory
(the options, check mode, and a failure that never shows a value)."""

from __future__ import annotations

import os

import pytest
from ansible_collections.connect.platform.plugins.modules import secret_files
from ansible_collections.connect.platform.tests.unit.plugins.modules.utils import run_main as _run_main

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the secret files are group root")

OLD = "a" * 64
NEW = "b" * 64


def run_main(args, capsys, **modes):
    return _run_main(secret_files.main, args, capsys, **modes)


def test_defaults_generate_once_then_keep(tmp_path, capsys):
    args = {"path": str(tmp_path), "secrets": [{"name": "redis_cache_password"}, {"name": "key", "chars": ["hexdigits"], "length": 64}]}
    result, code = run_main(args, capsys)
    assert code == 0 and result["changed"] is True
    assert result["actions"] == {"redis_cache_password": "generated", "key": "generated"}
    password = (tmp_path / "redis_cache_password").read_text()
    assert len(password) == 40 and password.isalnum()
    assert len((tmp_path / "key").read_text()) == 64
    assert result["secrets"] == {"redis_cache_password": password, "key": (tmp_path / "key").read_text()}
    for name in ("redis_cache_password", "key"):
        info = (tmp_path / name).stat()
        assert (oct(info.st_mode & 0o777), info.st_uid, info.st_gid) == ("0o400", 0, 0)

    again, code = run_main(args, capsys)
    assert code == 0 and again["changed"] is False
    assert again["secrets"] == result["secrets"]


def test_owner_by_uid_and_the_vaults_value(tmp_path, capsys):
    args = {"path": str(tmp_path), "secrets": [{"name": "postgres_superuser_password", "value": OLD, "owner": "999"}]}
    result, code = run_main(args, capsys)
    assert code == 0 and result["actions"] == {"postgres_superuser_password": "written"}
    info = (tmp_path / "postgres_superuser_password").stat()
    assert (info.st_uid, oct(info.st_mode & 0o777)) == (999, "0o400")
    # Returned as given: Ansible's no_log masking would replace it (the caller's task is no_log).
    assert result["secrets"]["postgres_superuser_password"] == OLD


def test_check_mode_acts_on_nothing(tmp_path, capsys):
    args = {"path": str(tmp_path), "secrets": [{"name": "new"}, {"name": "given", "value": NEW}]}
    result, code = run_main(args, capsys, check=True)
    assert code == 0 and result["changed"] is True
    assert result["secrets"] == {"new": "check-mode-placeholder", "given": NEW}
    assert os.listdir(tmp_path) == []


def test_a_protected_secret_that_differs_fails_without_showing_values(tmp_path, capsys):
    (tmp_path / "app_encryption_key").write_text(OLD)
    args = {"path": str(tmp_path), "secrets": [{"name": "app_encryption_key", "value": NEW, "protected": True}]}
    result, code = run_main(args, capsys)
    assert code == 1 and result["failed"] is True
    assert result["msg"].startswith("app_encryption_key from the inventory differs from the one this server keeps")
    assert "-e app_encryption_key_replace=true" in result["msg"]
    assert OLD not in result["msg"] and NEW not in result["msg"]
    assert (tmp_path / "app_encryption_key").read_text() == OLD


def test_a_missing_directory_is_named(tmp_path, capsys):
    result, code = run_main({"path": str(tmp_path / "nowhere"), "secrets": [{"name": "x"}]}, capsys)
    assert code == 1
    assert result["msg"] == f"{tmp_path}/nowhere does not exist (connect.platform.compose_stack creates it)"
