"""Unit tests for plugins/module_utils/_secrets.py: the decisions on a fake
file system, and the real one (LocalFiles) on a temporary directory."""

from __future__ import annotations

import os
import string

import pytest
from ansible_collections.connect.platform.plugins.module_utils._secrets import (
    CHECK_PLACEHOLDER,
    LocalFiles,
    SecretError,
    SecretFiles,
    alphabet,
    generate,
    resolve_owner,
)

DIR = "/opt/connect/secrets"
OLD = "a" * 64
NEW = "b" * 64


class FakeFiles:
    """A directory of files in a dict: path -> {content, uid, gid, mode}."""

    def __init__(self, files=None, directory=True):
        self.files = dict(files or {})
        self.directory = directory
        self.calls = []

    def is_dir(self, path):
        return self.directory

    def read(self, path):
        found = self.files.get(path)
        return dict(found) if found else None

    def write(self, path, content, uid):
        self.calls.append(("write", path))
        self.files[path] = {"content": content, "uid": uid, "gid": 0, "mode": 0o400}

    def remove(self, path):
        self.calls.append(("remove", path))
        del self.files[path]

    def set_attributes(self, path, uid):
        self.calls.append(("attributes", path))
        self.files[path].update(uid=uid, gid=0, mode=0o400)


def kept(content, uid=0, gid=0, mode=0o400):
    return {"content": content, "uid": uid, "gid": gid, "mode": mode}


def keeper(files, **kwargs):
    return SecretFiles(DIR, files=files, choice=lambda chars: chars[0], owner_uid=resolve_owner, **kwargs)


def secret(name="app_encryption_key", **item):
    return {"name": name, "value": "", "owner": "root", "chars": ["ascii_letters", "digits"], "length": 40} | item


# -- what happens to one file ----------------------------------------------------------------------

P = f"{DIR}/app_encryption_key"


@pytest.mark.parametrize(
    ("files", "item", "action", "value", "after"),
    [
        # The vault's value is written when absent or different, and wins for a password.
        ({}, {"value": OLD}, "written", OLD, kept(OLD)),
        ({P: kept(OLD)}, {"value": NEW}, "written", NEW, kept(NEW)),
        ({P: kept(OLD)}, {"value": OLD}, "unchanged", OLD, kept(OLD)),
        # A protected secret the server keeps the same way, or replaced on purpose.
        ({P: kept(OLD)}, {"value": OLD, "protected": True}, "unchanged", OLD, kept(OLD)),
        ({P: kept(OLD)}, {"value": NEW, "protected": True, "replace": True}, "written", NEW, kept(NEW)),
        ({}, {"value": NEW, "protected": True}, "written", NEW, kept(NEW)),
        # Without a value: generated once, then kept whatever the vault's length or chars say.
        ({}, {}, "generated", "a" * 40, kept("a" * 40)),
        ({}, {"chars": ["digits"], "length": 5}, "generated", "00000", kept("00000")),
        ({P: kept("kept")}, {"length": 64}, "unchanged", "kept", kept("kept")),
        # Owner, group and mode come back; the content stays.
        ({P: kept("kept", uid=5)}, {"owner": "999"}, "attributes", "kept", kept("kept", uid=999)),
        ({P: kept("kept", mode=0o644)}, {}, "attributes", "kept", kept("kept")),
        ({P: kept("kept", gid=5)}, {}, "attributes", "kept", kept("kept")),
        ({P: kept(OLD, uid=5)}, {"value": NEW}, "written", NEW, kept(NEW)),
        ({P: kept("kept", uid=999)}, {"owner": 999}, "unchanged", "kept", kept("kept", uid=999)),
        # Rotated: a new one generated in place of the kept one, or the vault's new value written.
        ({P: kept("kept")}, {"rotate": True}, "rotated", "a" * 40, kept("a" * 40)),
        ({P: kept(OLD)}, {"rotate": True, "value": NEW}, "rotated", NEW, kept(NEW)),
        ({}, {"rotate": True}, "generated", "a" * 40, kept("a" * 40)),
    ],
)
def test_one_secret(files, item, action, value, after):
    fake = FakeFiles(files)
    result = keeper(fake).run([secret(**item)])
    assert result["actions"] == {"app_encryption_key": action}
    assert result["secrets"] == {"app_encryption_key": value}
    assert result["changed"] is (action != "unchanged")
    assert fake.files[P] == after


@pytest.mark.parametrize(
    ("files", "item", "action", "value"),
    [
        ({}, {}, "generated", CHECK_PLACEHOLDER),
        ({}, {"value": OLD}, "written", OLD),
        ({P: kept(OLD)}, {"value": NEW}, "written", NEW),
        ({P: kept("kept", uid=5)}, {}, "attributes", "kept"),
        ({P: kept("kept")}, {}, "unchanged", "kept"),
    ],
)
def test_check_mode_predicts_and_writes_nothing(files, item, action, value):
    fake = FakeFiles(files)
    before = {path: dict(entry) for path, entry in fake.files.items()}
    result = keeper(fake).run([secret(**item)], check_mode=True)
    assert result["actions"] == {"app_encryption_key": action}
    assert result["secrets"] == {"app_encryption_key": value}
    assert result["changed"] is (action != "unchanged")
    assert fake.calls == [] and fake.files == before


def test_check_mode_without_the_directory_means_nothing_exists_yet():
    fake = FakeFiles(directory=False)
    result = keeper(fake).run([secret(), secret("redis_cache_password", value=OLD)], check_mode=True)
    assert result["actions"] == {"app_encryption_key": "generated", "redis_cache_password": "written"}
    assert result["secrets"] == {"app_encryption_key": CHECK_PLACEHOLDER, "redis_cache_password": OLD}


def test_a_missing_directory_fails_outside_check_mode():
    with pytest.raises(SecretError, match="/opt/connect/secrets does not exist"):
        keeper(FakeFiles(directory=False)).run([secret()])


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_protected_secret_that_differs_writes_nothing_at_all(check_mode):
    fake = FakeFiles({P: kept(OLD)})
    wanted = [secret("redis_cache_password", value=NEW), secret(value=NEW, protected=True)]
    with pytest.raises(SecretError) as info:
        keeper(fake).run(wanted, check_mode=check_mode)
    message = str(info.value)
    assert message.startswith("app_encryption_key from the inventory differs from the one this server keeps in " + P)
    assert "-e app_encryption_key_replace=true" in message
    assert OLD not in message and NEW not in message
    # Checked before any write: the password listed first was not written either.
    assert fake.calls == []


PREV = P + ".previous"


def test_rotating_keeps_the_old_value_as_the_previous_one_written_first():
    fake = FakeFiles({P: kept(OLD)})
    result = keeper(fake).run([secret(rotate=True)])
    assert result["actions"] == {"app_encryption_key": "rotated"}
    assert fake.calls == [("write", PREV), ("write", P)]
    assert fake.files[PREV]["content"] == OLD and fake.files[P]["content"] == result["secrets"]["app_encryption_key"] != OLD
    assert result["previous"] == {"app_encryption_key": OLD}


def test_rotating_to_a_vault_value_keeps_the_old_one_too():
    fake = FakeFiles({P: kept(OLD)})
    result = keeper(fake).run([secret(value=NEW, rotate=True)])
    assert result["actions"] == {"app_encryption_key": "rotated"}
    assert (fake.files[PREV]["content"], fake.files[P]["content"]) == (OLD, NEW)


def test_a_rotation_in_progress_resumes_without_a_new_value():
    # Cut short after the files were written: the clients still use OLD, so OLD must stay the previous one.
    fake = FakeFiles({P: kept(NEW), PREV: kept(OLD)})
    result = keeper(fake).run([secret(rotate=True)])
    assert result["actions"] == {"app_encryption_key": "unchanged"} and fake.calls == []
    assert result["secrets"] == {"app_encryption_key": NEW} and result["previous"] == {"app_encryption_key": OLD}


def test_a_rotation_cut_between_its_two_writes_rotates_again():
    fake = FakeFiles({P: kept(OLD), PREV: kept(OLD)})
    result = keeper(fake).run([secret(rotate=True)])
    assert result["actions"] == {"app_encryption_key": "rotated"}
    assert fake.files[PREV]["content"] == OLD and fake.files[P]["content"] != OLD


@pytest.mark.parametrize("check_mode", [False, True])
def test_finishing_removes_the_previous_value(check_mode):
    fake = FakeFiles({P: kept(NEW, uid=999), PREV: kept(OLD, uid=999)})
    result = keeper(fake).run([secret(finish=True)], check_mode=check_mode)  # owner root: the kept file is left alone
    assert result["actions"] == {"app_encryption_key": "finished"} and result["previous"] == {}
    assert (PREV in fake.files) is check_mode and fake.files[P]["uid"] == 999
    again = keeper(FakeFiles({P: kept(NEW)})).run([secret(finish=True)])
    assert again["actions"] == {"app_encryption_key": "unchanged"} and not again["changed"]


def test_a_kept_previous_value_is_returned_to_every_caller():
    result = keeper(FakeFiles({P: kept(NEW), PREV: kept(OLD)})).run([secret()])
    assert result["previous"] == {"app_encryption_key": OLD} and result["actions"] == {"app_encryption_key": "unchanged"}


def test_rotate_and_finish_together_are_refused():
    with pytest.raises(SecretError, match="rotate and finish exclude each other"):
        keeper(FakeFiles({P: kept(OLD)})).run([secret(rotate=True, finish=True)])


def test_rotating_to_the_vault_value_the_server_already_keeps_changes_nothing():
    # The vault's value is the rotation: equal to the kept one (already rotated, or not changed yet), nothing moves.
    fake = FakeFiles({P: kept(OLD)})
    result = keeper(fake).run([secret(value=OLD, rotate=True)])
    assert result["actions"] == {"app_encryption_key": "unchanged"} and fake.calls == []


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        ([secret(), secret()], "secret app_encryption_key is listed more than once"),
        ([secret("../etc/shadow")], "secret name '../etc/shadow' is not a file name"),
        ([secret("")], "secret name '' is not a file name"),
        ([secret(owner="nosuchuser-xyz")], "owner 'nosuchuser-xyz' is neither a uid nor a user on this host"),
        ([secret(chars=["letters"])], "unknown character class letters: use names from ascii_letters"),
        ([secret(chars=[])], "chars is empty"),
        ([secret(length=0)], "length must be at least 1, got 0"),
        ([secret(rotate=True, protected=True)], "app_encryption_key protects data and is not rotated"),
    ],
)
def test_bad_input(wanted, message):
    with pytest.raises(SecretError, match=message.replace("(", r"\(").replace(")", r"\)")):
        keeper(FakeFiles()).run(wanted)


# -- generation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "chars"),
    [
        (["ascii_letters", "digits"], string.ascii_letters + string.digits),
        (["hexdigits"], string.hexdigits),
        (["digits", "hexdigits"], string.hexdigits),  # no repeats, order kept
        (["punctuation"], string.punctuation),
    ],
)
def test_alphabet(names, chars):
    assert alphabet(names) == chars


def test_generated_secrets_use_the_classes_and_length():
    value = generate(["hexdigits"], 64)
    assert len(value) == 64 and set(value) <= set(string.hexdigits)
    assert generate(["ascii_letters", "digits"], 40) != generate(["ascii_letters", "digits"], 40)


@pytest.mark.parametrize(("owner", "uid"), [("999", 999), (999, 999), ("root", 0), (" 70 ", 70)])
def test_resolve_owner(owner, uid):
    assert resolve_owner(owner) == uid


# -- the real file system --------------------------------------------------------------------------


def test_local_files_write_atomically_with_owner_group_and_mode(tmp_path):
    files = LocalFiles()
    path = str(tmp_path / "secret")
    assert files.read(path) is None
    uid = os.getuid()
    if uid != 0:
        pytest.skip("group root needs root")
    files.write(path, "value", 999)
    assert files.read(path) == {"content": "value", "uid": 999, "gid": 0, "mode": 0o400}
    files.write(path, "other", 0)
    assert files.read(path) == {"content": "other", "uid": 0, "gid": 0, "mode": 0o400}
    assert os.listdir(tmp_path) == ["secret"]  # no temporary file left
    os.chmod(path, 0o644)
    files.set_attributes(path, 70)
    assert files.read(path)["mode"] == 0o400 and files.read(path)["uid"] == 70


def test_local_files_refuse_what_is_not_a_regular_file(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(SecretError, match="is not a regular file"):
        LocalFiles().read(str(tmp_path / "dir"))
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    with pytest.raises(SecretError, match="is not a regular file"):
        LocalFiles().read(str(tmp_path / "link"))


def test_local_files_refuse_binary_content_without_showing_it(tmp_path):
    (tmp_path / "bin").write_bytes(b"\xff\xfesecret")
    with pytest.raises(SecretError) as info:
        LocalFiles().read(str(tmp_path / "bin"))
    assert "secret" not in str(info.value).replace(str(tmp_path), "")
