# Copyright (c) 2026, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""The decisions of connect.platform.config_files, kept apart from Ansible.

A role's configuration files in one call: each file's content (rendered on
the controller), owner, group and mode are compared with the host's; only
what differs is written. In the order given, a file whose content changes is
staged next to its destination with its final owner and mode, checked with
its ``validate`` command and renamed into place, before the next is checked
(a later file's check may need an earlier one, as docker compose config
needs the env_file). A file that fails its check is not installed, nor any
after it.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import tempfile


class ConfigFileError(Exception):
    """A file that cannot be kept as asked; the message names the file, never its content."""


def resolve_id(value, kind):
    """A uid or gid from a number (``999``, ``"999"``) or a name (``root``)."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid if kind == "owner" else grp.getgrnam(text).gr_gid
    except KeyError:
        what = "user" if kind == "owner" else "group"
        raise ConfigFileError(f"{kind} {text!r} is neither a number nor a {what} on this host") from None


def parse_mode(mode):
    """Permission bits from an octal string (``"0644"``, ``"644"``)."""
    text = str(mode).strip()
    try:
        bits = int(text, 8)
    except ValueError:
        raise ConfigFileError(f"mode {text!r} is not an octal number such as '0644'") from None
    if not 0 <= bits <= 0o7777:
        raise ConfigFileError(f"mode {text!r} is outside 0000-7777")
    return bits


class LocalFiles:
    """The file system side."""

    def read(self, path):
        """``None`` when absent, else content (bytes), uid, gid and permission bits."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            raise ConfigFileError(f"{path} exists and is not a regular file")
        with open(path, "rb") as handle:
            content = handle.read()
        return {"content": content, "uid": info.st_uid, "gid": info.st_gid, "mode": stat.S_IMODE(info.st_mode)}

    def is_dir(self, path):
        return os.path.isdir(path)

    def stage(self, path, content, uid, gid, mode):
        """A temporary file next to ``path`` with the final content, owner and mode."""
        directory, base = os.path.split(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchown(handle.fileno(), uid, gid)
                os.fchmod(handle.fileno(), mode)
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            self.discard(tmp)
            raise
        return tmp

    def discard(self, tmp):
        if os.path.lexists(tmp):
            os.unlink(tmp)

    def install(self, tmp, path):
        os.replace(tmp, path)

    def set_attributes(self, path, uid, gid, mode):
        os.chown(path, uid, gid, follow_symlinks=False)
        os.chmod(path, mode)


class ConfigFiles:
    """Keeps a list of files (see the module's documentation).

    ``validate(command)`` runs a command and returns ``(rc, stdout, stderr)``.
    """

    def __init__(self, validate, files=None, resolve=resolve_id):
        self.validate = validate
        self.files = files or LocalFiles()
        self.resolve = resolve

    def plan(self, wanted, check_mode=False):
        """Per file: its wanted state and what differs, nothing written.

        In check mode an owner or group this run would create first (a user
        made by an earlier task) is not an error: the file is reported as
        changing."""
        plans, seen = [], set()
        for spec in wanted:
            path = spec["path"]
            if not os.path.isabs(path):
                raise ConfigFileError(f"{path} is not an absolute path")
            if path in seen:
                raise ConfigFileError(f"{path} is listed twice")
            seen.add(path)
            validate = spec.get("validate") or None
            if validate and "%s" not in validate:
                raise ConfigFileError(f"validate for {path} must contain %s (the file to check): {validate!r}")
            try:
                uid, gid = self.resolve(spec.get("owner", "root"), "owner"), self.resolve(spec.get("group", "root"), "group")
            except ConfigFileError:
                if not check_mode:
                    raise
                uid = gid = None
            want = {
                "path": path,
                "content": spec["content"].encode("utf-8"),
                "uid": uid,
                "gid": gid,
                "mode": parse_mode(spec["mode"]),
                "validate": validate,
            }
            directory = os.path.dirname(path)
            have = self.files.read(path) if self.files.is_dir(directory) else None
            if have is None:
                action = "created"
            elif have["content"] != want["content"]:
                action = "written"
            elif (have["uid"], have["gid"], have["mode"]) != (want["uid"], want["gid"], want["mode"]):
                action = "attributes"
            else:
                action = "unchanged"
            plans.append({"want": want, "have": have, "action": action, "directory": directory})
        return plans

    def run(self, wanted, check_mode=False, diff=False):
        plans = self.plan(wanted, check_mode=check_mode)
        result = {
            "changed": any(plan["action"] != "unchanged" for plan in plans),
            "actions": {plan["want"]["path"]: plan["action"] for plan in plans},
        }
        result["changed_paths"] = [path for path, action in result["actions"].items() if action != "unchanged"]
        if diff:
            result["diff"] = [self._diff(plan) for plan in plans if plan["action"] != "unchanged"]
        if check_mode:
            return result
        installed = set()
        for plan in plans:
            if plan["action"] in ("created", "written") and not self.files.is_dir(plan["directory"]):
                raise ConfigFileError(f"the directory of {plan['want']['path']} does not exist: create it first")
        for plan in plans:
            want = plan["want"]
            if plan["action"] == "attributes":
                self.files.set_attributes(want["path"], want["uid"], want["gid"], want["mode"])
                installed.add(want["path"])
            if plan["action"] not in ("created", "written"):
                continue
            tmp = self.files.stage(want["path"], want["content"], want["uid"], want["gid"], want["mode"])
            try:
                if want["validate"]:
                    rc, out, err = self.validate(want["validate"].replace("%s", tmp))
                    if rc != 0:
                        detail = (err or out or "").strip()
                        done = [path for path in result["changed_paths"] if path in installed]
                        raise ConfigFileError(
                            f"{want['path']} failed its check ({want['validate']}, rc={rc}): {detail}. "
                            f"It and the files after it were left as they were"
                            + (f"; installed before it: {', '.join(done)}." if done else ".")
                        )
                self.files.install(tmp, want["path"])
                installed.add(want["path"])
            finally:
                self.files.discard(tmp)
        return result

    @staticmethod
    def _diff(plan):
        path = plan["want"]["path"]
        have = plan["have"]
        before = "" if have is None else have["content"].decode("utf-8", "replace")
        after = plan["want"]["content"].decode("utf-8", "replace")
        entry = {"before_header": path, "after_header": path, "before": before, "after": after}
        if have is not None and plan["action"] == "attributes":
            entry["before"] = f"owner {have['uid']}, group {have['gid']}, mode {have['mode']:04o}\n"
            want = plan["want"]
            entry["after"] = f"owner {want['uid']}, group {want['gid']}, mode {want['mode']:04o}\n"
        return entry
