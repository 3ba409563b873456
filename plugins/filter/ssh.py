# Copyright: (c) 2026, Connect platform operations
# Apache License 2.0 (see galaxy.yml)
"""SSH filter: connect.platform.ssh_public_key.

Documentation lives in the sidecar file ssh_public_key.yml; the logic in
module_utils/_sshkey.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.module_utils._sshkey import SshKeyError, parse_public_key


def ssh_public_key(line, *, strict=False):
    """Check one public key line (see ssh_public_key.yml)."""
    try:
        parsed = parse_public_key(line)
    except SshKeyError as exc:
        if strict:
            raise AnsibleFilterError(f"ssh_public_key: {exc}", orig_exc=exc) from exc
        return {"valid": False, "problem": str(exc), "type": "", "comment": "", "fingerprint": ""}
    return {"valid": True, "problem": "", **parsed}


class FilterModule:
    """SSH filters."""

    def filters(self):
        return {"ssh_public_key": ssh_public_key}
