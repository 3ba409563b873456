"""Tests for plugins/modules/config_files.py: main() on a temporary directory
with a real validate command (check mode, a refused file, the diff)."""

from __future__ import annotations

import os

from ansible_collections.connect.platform.plugins.modules import config_files
from ansible_collections.connect.platform.tests.unit.plugins.modules.utils import run_main as _run_main


def run_main(args, capsys, **modes):
    return _run_main(config_files.main, args, capsys, **modes)


def entry(path, content, validate=None):
    owner = str(os.geteuid())
    return {"path": str(path), "content": content, "owner": owner, "group": str(os.getegid()), "mode": "0640", "validate": validate}


def test_writes_then_nothing_to_do(tmp_path, capsys):
    args = {"files": [entry(tmp_path / "a.json", '{"a": 1}\n', validate="python3 -m json.tool %s")]}
    result, code = run_main(args, capsys, diff=True)
    assert code == 0 and result["changed"] is True
    assert result["diff"][0]["after"] == '{"a": 1}\n'
    assert (tmp_path / "a.json").read_text() == '{"a": 1}\n'
    again, code = run_main(args, capsys)
    assert code == 0 and again["changed"] is False and again["actions"] == {str(tmp_path / "a.json"): "unchanged"}


def test_a_file_that_fails_its_check_is_refused(tmp_path, capsys):
    args = {"files": [entry(tmp_path / "ok.txt", "fine\n"), entry(tmp_path / "a.json", "{not json\n", validate="python3 -m json.tool %s")]}
    result, code = run_main(args, capsys)
    assert code == 1 and result["failed"] is True
    assert str(tmp_path / "a.json") in result["msg"] and "left as they were" in result["msg"]
    assert os.listdir(tmp_path) == ["ok.txt"]


def test_check_mode_writes_nothing(tmp_path, capsys):
    result, code = run_main({"files": [entry(tmp_path / "a.txt", "a\n")]}, capsys, check=True)
    assert code == 0 and result["changed"] is True and result["changed_paths"] == [str(tmp_path / "a.txt")]
    assert os.listdir(tmp_path) == []
