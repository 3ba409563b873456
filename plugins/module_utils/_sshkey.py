# Copyright: connect.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An OpenSSH public key line, checked before it goes into authorized_keys.

A key line is ``<type> <base64 blob> [comment]``. The blob is a sequence of
SSH strings (a 4-byte big-endian length, then that many bytes); the first
names the key type again, and each type has a fixed number of fields. A key
cut short while copying fails here: its base64 does not decode, a field's
length runs past the end of the blob, or a field is missing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

__all__ = ["KEY_TYPES", "SshKeyError", "parse_public_key"]

#: Key types accepted, with the number of SSH strings in their blob (the type
#: name included) and, where it is fixed, the length of the key field.
KEY_TYPES = {
    "ssh-ed25519": {"fields": 2, "key_length": 32},
    "sk-ssh-ed25519@openssh.com": {"fields": 3, "key_length": 32},
    "ecdsa-sha2-nistp256": {"fields": 3, "curve": "nistp256"},
    "ecdsa-sha2-nistp384": {"fields": 3, "curve": "nistp384"},
    "ecdsa-sha2-nistp521": {"fields": 3, "curve": "nistp521"},
    "sk-ecdsa-sha2-nistp256@openssh.com": {"fields": 4, "curve": "nistp256"},
    "ssh-rsa": {"fields": 3},
}

_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


class SshKeyError(ValueError):
    """Not a whole OpenSSH public key line."""


def _fields(blob):
    """The SSH strings of a blob; raises SshKeyError if they do not fill it exactly."""
    fields = []
    offset = 0
    while offset < len(blob):
        if len(blob) - offset < 4:
            raise SshKeyError(f"the key data ends in the middle of a field's length ({len(blob) - offset} stray bytes): it is cut short")
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if length > len(blob) - offset:
            raise SshKeyError(f"a field of the key data says {length} bytes but only {len(blob) - offset} follow: the key is cut short")
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def parse_public_key(line):
    """Parse ``<type> <base64> [comment]``; return its parts or raise SshKeyError.

    Returns ``{"type", "comment", "fingerprint"}``; the fingerprint is
    OpenSSH's ``SHA256:...`` (as ``ssh-keygen -lf`` prints it).
    """
    if not isinstance(line, str):
        raise SshKeyError(f"a key must be a string (one line of a .pub file), got {type(line).__name__}")
    if "\n" in line.strip() or "\r" in line:
        raise SshKeyError("a key must be one line; give each key as its own list item")
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise SshKeyError("a key line has a type and base64 key data, e.g. 'ssh-ed25519 AAAAC3Nza... you@laptop'")
    key_type, data = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) > 2 else ""
    if key_type not in KEY_TYPES:
        raise SshKeyError(f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)} (options before the type are not accepted)")
    if not _BASE64.match(data) or len(data) % 4:
        raise SshKeyError(f"the key data is not whole base64 ({len(data)} characters): it is cut short or mistyped")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SshKeyError(f"the key data is not base64: {exc}") from exc
    fields = _fields(blob)
    if not fields or fields[0] != key_type.encode():
        named = fields[0].decode("ascii", "replace") if fields else "nothing"
        raise SshKeyError(f"the line says {key_type} but its key data names {named!r}")
    spec = KEY_TYPES[key_type]
    if len(fields) != spec["fields"]:
        raise SshKeyError(f"{key_type} key data has {len(fields)} fields where it needs {spec['fields']}: it is cut short")
    if "key_length" in spec and len(fields[1]) != spec["key_length"]:
        raise SshKeyError(f"{key_type} key is {len(fields[1])} bytes where it needs {spec['key_length']}: it is cut short")
    if "curve" in spec and fields[1] != spec["curve"].encode():
        raise SshKeyError(f"{key_type} key data names curve {fields[1].decode('ascii', 'replace')!r}")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return {"type": key_type, "comment": comment, "fingerprint": f"SHA256:{digest}"}
