# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""The decisions of connect.platform.secret_files, kept apart from Ansible.

Per secret file under one directory: the vault's value when the inventory
gives one (a secret that protects data is never replaced by a different one
unless the caller says so), otherwise one generated the first time and never
changed afterwards, unless it is rotated (``rotate``: a new one generated, or
the vault's new value written). A rotated secret's old value stays in
``<name>.previous`` until the caller says the rotation is finished
(``finish``), so a service can accept both while its clients move over, and a
rotation cut short resumes without losing the value those clients still use. Files are 0400, group root, owned by the uid of the
container that reads them, and written atomically. ``SecretFiles.run`` checks
every secret before it writes any; nothing it raises or returns besides
``secrets`` holds a value.
"""

from __future__ import annotations

import os
import pwd
import secrets as _random
import stat
import string
import tempfile

MODE = 0o400
GID = 0
CHECK_PLACEHOLDER = "check-mode-placeholder"
PREVIOUS_SUFFIX = ".previous"
# Character classes a generated secret may draw from (Python's `string` module).
CHAR_CLASSES = ("ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits", "octdigits", "punctuation")


class SecretError(Exception):
    """A secret that cannot be kept as asked; the message never holds a value."""


def alphabet(names):
    """The characters of the named classes, in order, without repeats."""
    if not names:
        raise SecretError("chars is empty: name at least one class of " + ", ".join(CHAR_CLASSES))
    unknown = [name for name in names if name not in CHAR_CLASSES]
    if unknown:
        raise SecretError(f"unknown character class {', '.join(unknown)}: use names from {', '.join(CHAR_CLASSES)}")
    return "".join(dict.fromkeys("".join(getattr(string, name) for name in names)))


def generate(names, length, choice=_random.choice):
    """A random secret of ``length`` characters from the named classes."""
    if length < 1:
        raise SecretError(f"length must be at least 1, got {length}")
    chars = alphabet(names)
    return "".join(choice(chars) for _position in range(length))


def resolve_owner(owner):
    """A uid from a number (``999``, ``"999"``) or a user name (``root``)."""
    text = str(owner).strip()
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise SecretError(f"owner {text!r} is neither a uid nor a user on this host") from None


def protected_message(name, path):
    return (
        f"{name} from the inventory differs from the one this server keeps in {path}, and it protects data: "
        "replacing it would leave everything encrypted with the kept one unreadable. Nothing was replaced. "
        "Put the server's value in the vault; or, only after re-encrypting the data with the new value "
        "(or keeping the old one where the app can still read it), run again with "
        f"-e {name}_replace=true."
    )


class LocalFiles:
    """The file system side: one directory of small text files."""

    def is_dir(self, path):
        return os.path.isdir(path)

    def read(self, path):
        """``None`` when absent, else content, uid, gid and permission bits."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"{path} exists and is not a regular file")
        try:
            with open(path, encoding="utf-8") as handle:
                content = handle.read()
        except UnicodeDecodeError:
            raise SecretError(f"{path} is not UTF-8 text") from None
        return {"content": content, "uid": info.st_uid, "gid": info.st_gid, "mode": stat.S_IMODE(info.st_mode)}

    def write(self, path, content, uid):
        """Replace the file atomically: a temporary file in the same directory, then rename."""
        directory, base = os.path.split(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), MODE)
                os.fchown(handle.fileno(), uid, GID)
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def remove(self, path):
        os.unlink(path)

    def set_attributes(self, path, uid):
        os.chown(path, uid, GID, follow_symlinks=False)
        os.chmod(path, MODE)


class SecretFiles:
    """Keeps a list of secrets under one directory (see the module's documentation)."""

    def __init__(self, directory, files=None, choice=_random.choice, owner_uid=resolve_owner):
        self.directory = directory
        self.files = files or LocalFiles()
        self.choice = choice
        self.owner_uid = owner_uid

    def plan(self, wanted, check_mode):
        """One step per secret; raises SecretError before anything is written."""
        names = [item["name"] for item in wanted]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise SecretError(f"secret {', '.join(repeated)} is listed more than once")
        present = self.files.is_dir(self.directory)
        if not present and not check_mode:
            raise SecretError(f"{self.directory} does not exist (connect.platform.compose_stack creates it)")
        steps = []
        for item in wanted:
            name = item["name"]
            if not name or "/" in name or name in (".", ".."):
                raise SecretError(f"secret name {name!r} is not a file name")
            path = os.path.join(self.directory, name)
            uid = self.owner_uid(item.get("owner", "root"))
            current = self.files.read(path) if present else None
            value = item.get("value") or ""
            step = {"name": name, "path": path, "uid": uid, "write": None, "attributes": False}
            previous_path = path + PREVIOUS_SUFFIX
            previous = self.files.read(previous_path) if present else None
            step["previous_path"] = previous_path
            step["previous"] = previous["content"] if previous else None
            if item.get("rotate") and item.get("finish"):
                raise SecretError(f"{name}: rotate and finish exclude each other (finish a rotation in a later call)")
            if item.get("rotate"):
                if item.get("protected"):
                    raise SecretError(f"{name} protects data and is not rotated: re-encrypt the data first, then use {name}_replace")
                # A rotation in progress (a previous value kept, different from the current one) resumes: the
                # current value is the new one, unless the vault gives another. Otherwise the kept value becomes
                # the previous one. The vault's value equal to the kept one changes nothing, so a rerun goes on.
                in_progress = previous is not None and current is not None and previous["content"] != current["content"]
                if current is not None and not in_progress and (not value or value != current["content"]):
                    step["keep_previous"] = current["content"]
                    step["previous"] = current["content"]
                    if not value:
                        current = None  # a new one is generated below, the kept one replaced
                        step["write"] = "rotated"
            elif item.get("finish") and previous is not None:
                step["write_finish"] = True
                step["previous"] = None
            if value:
                if current is not None and current["content"] != value and item.get("protected"):
                    if not item.get("replace"):
                        raise SecretError(protected_message(name, path))
                if current is None or current["content"] != value:
                    step["write"] = "rotated" if step.get("keep_previous") is not None else "vault"
                step["value"] = value
            elif current is None:
                step["write"] = step["write"] or "generated"
                value = generate(item.get("chars", ["ascii_letters", "digits"]), item.get("length", 40), self.choice)
                # Check mode keeps nothing, so what it generated would not be the file's value.
                step["value"] = CHECK_PLACEHOLDER if check_mode else value
            else:
                step["value"] = current["content"]
            # finish only forgets the previous value: the kept file is left as it is (its owner is the caller's).
            if current is not None and step["write"] is None and not item.get("finish"):
                step["attributes"] = (current["uid"], current["gid"], current["mode"]) != (uid, GID, MODE)
            steps.append(step)
        return steps

    def run(self, wanted, check_mode=False):
        """changed, the values by name, and what was (or would be) done to each file."""
        steps = self.plan(wanted, check_mode)
        actions = {}
        for step in steps:
            if step["write"]:
                action = {"vault": "written"}.get(step["write"], step["write"])
                if not check_mode:
                    # The old value first: a run cut short between the two writes leaves both files equal,
                    # which the next rotation does not take for a rotation in progress.
                    if step.get("keep_previous") is not None:
                        self.files.write(step["previous_path"], step["keep_previous"], step["uid"])
                    self.files.write(step["path"], step["value"], step["uid"])
            elif step.get("write_finish"):
                action = "finished"
                if not check_mode:
                    self.files.remove(step["previous_path"])
            elif step["attributes"]:
                action = "attributes"
                if not check_mode:
                    self.files.set_attributes(step["path"], step["uid"])
            else:
                action = "unchanged"
            actions[step["name"]] = action
        return {
            "changed": any(action != "unchanged" for action in actions.values()),
            "secrets": {step["name"]: step["value"] for step in steps},
            "previous": {step["name"]: step["previous"] for step in steps if step["previous"] is not None},
            "actions": actions,
        }
