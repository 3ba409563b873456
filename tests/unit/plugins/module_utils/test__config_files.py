"""Tests for plugins/module_utils/_config_files.py: the plan and the staging
on a real temporary directory, with a validate command that can fail."""

from __future__ import annotations

import os

import pytest
from ansible_collections.connect.platform.plugins.module_utils._config_files import (
    ConfigFileError,
    ConfigFiles,
    parse_mode,
    resolve_id,
)

ME = os.geteuid()
MY_GROUP = os.getegid()


class Checker:
    """validate(): fails for a staged file whose content contains BAD; records each call."""

    def __init__(self):
        self.calls = []

    def __call__(self, command):
        self.calls.append(command)
        path = command.split()[-1]
        with open(path, encoding="utf-8") as handle:
            bad = "BAD" in handle.read()
        return (1, "", "line 1: BAD is not allowed") if bad else (0, "ok", "")


def spec(path, content, mode="0644", validate="check %s"):
    return {"path": str(path), "content": content, "owner": str(ME), "group": str(MY_GROUP), "mode": mode, "validate": validate}


def test_creates_then_reports_nothing_to_do(tmp_path):
    checker = Checker()
    files = [spec(tmp_path / "a.conf", "a\n"), spec(tmp_path / "b.conf", "b\n", mode="0600", validate=None)]
    result = ConfigFiles(checker).run(files)
    assert result["changed"] is True
    assert result["actions"] == {str(tmp_path / "a.conf"): "created", str(tmp_path / "b.conf"): "created"}
    assert (tmp_path / "a.conf").read_text() == "a\n"
    assert oct((tmp_path / "b.conf").stat().st_mode & 0o7777) == "0o600"
    assert len(checker.calls) == 1 and checker.calls[0].startswith("check ") and ".a.conf." in checker.calls[0]

    again = ConfigFiles(checker).run(files)
    assert again["changed"] is False and again["changed_paths"] == []
    assert len(checker.calls) == 1, "an unchanged file is not checked again"


def test_a_bad_file_stops_the_call_before_it_is_installed(tmp_path):
    (tmp_path / "a.conf").write_text("old a\n")
    (tmp_path / "c.conf").write_text("old c\n")
    files = [spec(tmp_path / "a.conf", "new a\n"), spec(tmp_path / "b.conf", "BAD\n"), spec(tmp_path / "c.conf", "new c\n")]
    with pytest.raises(ConfigFileError) as info:
        ConfigFiles(Checker()).run(files)
    message = str(info.value)
    assert str(tmp_path / "b.conf") in message and "BAD is not allowed" in message
    assert f"installed before it: {tmp_path / 'a.conf'}." in message
    assert (tmp_path / "a.conf").read_text() == "new a\n", "checked and installed in order"
    assert not (tmp_path / "b.conf").exists()
    assert (tmp_path / "c.conf").read_text() == "old c\n", "nothing after the bad file"
    assert sorted(os.listdir(tmp_path)) == ["a.conf", "c.conf"], "no staged file is left behind"


def test_a_later_check_sees_the_earlier_file(tmp_path):
    seen = []

    def needs_env(command):
        seen.append((tmp_path / "env").exists())
        return (0, "", "")

    files = [spec(tmp_path / "env", "A=1\n", validate=None), spec(tmp_path / "compose.yml", "services: {}\n")]
    ConfigFiles(needs_env).run(files)
    assert seen == [True]


def test_attributes_alone_are_fixed_without_a_check(tmp_path):
    target = tmp_path / "a.conf"
    target.write_text("same\n")
    target.chmod(0o666)
    checker = Checker()
    result = ConfigFiles(checker).run([spec(target, "same\n", mode="0640")], diff=True)
    assert result["actions"] == {str(target): "attributes"}
    assert oct(target.stat().st_mode & 0o7777) == "0o640"
    assert checker.calls == []
    assert "mode 0666" in result["diff"][0]["before"] and "mode 0640" in result["diff"][0]["after"]


def test_check_mode_writes_nothing_and_shows_the_diff(tmp_path):
    (tmp_path / "a.conf").write_text("old\n")
    checker = Checker()
    result = ConfigFiles(checker).run([spec(tmp_path / "a.conf", "new\n")], check_mode=True, diff=True)
    assert result["changed_paths"] == [str(tmp_path / "a.conf")]
    path = str(tmp_path / "a.conf")
    assert result["diff"] == [{"before_header": path, "after_header": path, "before": "old\n", "after": "new\n"}]
    assert (tmp_path / "a.conf").read_text() == "old\n" and checker.calls == []


def test_check_mode_with_a_missing_directory_predicts_creation(tmp_path):
    result = ConfigFiles(Checker()).run([spec(tmp_path / "later" / "a.conf", "a\n")], check_mode=True)
    assert result["actions"] == {str(tmp_path / "later" / "a.conf"): "created"}


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([spec("relative.conf", "x")], "not an absolute path"),
        ([spec("/tmp/x.conf", "x"), spec("/tmp/x.conf", "y")], "listed twice"),
        ([spec("/tmp/x.conf", "x", validate="nginx -t")], "must contain %s"),
        ([spec("/tmp/x.conf", "x", mode="rw-r--r--")], "not an octal number"),
    ],
)
def test_bad_input_is_refused_before_anything_is_read(files, words):
    with pytest.raises(ConfigFileError, match=words):
        ConfigFiles(Checker()).plan(files)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigFileError, match="does not exist: create it first"):
        ConfigFiles(Checker()).run([spec(tmp_path / "missing" / "a.conf", "a\n")])


def test_a_directory_in_the_way_is_refused(tmp_path):
    (tmp_path / "a.conf").mkdir()
    with pytest.raises(ConfigFileError, match="not a regular file"):
        ConfigFiles(Checker()).run([spec(tmp_path / "a.conf", "a\n")])


def test_ids_and_modes():
    assert resolve_id("root", "owner") == 0 and resolve_id("999", "owner") == 999 and resolve_id(101, "group") == 101
    assert resolve_id("root", "group") == 0
    with pytest.raises(ConfigFileError, match="neither a number nor a user"):
        resolve_id("no-such-user-here", "owner")
    assert parse_mode("0644") == 0o644 and parse_mode("640") == 0o640
    with pytest.raises(ConfigFileError, match="outside"):
        parse_mode("17777")


def test_check_mode_takes_an_owner_an_earlier_task_would_create(tmp_path):
    files = [dict(spec(tmp_path / "a.conf", "a\n"), owner="no-such-user-yet")]
    result = ConfigFiles(Checker()).run(files, check_mode=True)
    assert result["actions"] == {str(tmp_path / "a.conf"): "created"}
    with pytest.raises(ConfigFileError, match="neither a number nor a user"):
        ConfigFiles(Checker()).run(files)
