"""Tests for plugins/module_utils/_sshkey.py: whole keys pass, cut ones fail."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from ansible_collections.connect.platform.plugins.module_utils._sshkey import SshKeyError, parse_public_key

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBp0KHvO6x8SRNpsJ8xXnCWfCK0K1XrVt5Ub4ORbH9hB you@laptop"


@pytest.fixture(scope="module")
def keygen(tmp_path_factory):
    """Make a real key pair with ssh-keygen; return its public line and fingerprint."""
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen is not installed")
    made = {}

    def make(key_type, bits=None):
        if (key_type, bits) not in made:
            path = tmp_path_factory.mktemp("keys") / "id"
            cmd = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"ops@{key_type}", "-f", str(path)]
            if bits:
                cmd += ["-b", str(bits)]
            subprocess.run(cmd, check=True, capture_output=True)
            line = path.with_suffix(".pub").read_text().strip()
            fingerprint = subprocess.run(["ssh-keygen", "-lf", str(path.with_suffix(".pub"))], check=True, capture_output=True, text=True)
            made[(key_type, bits)] = (line, fingerprint.stdout.split()[1])
        return made[(key_type, bits)]

    return make


@pytest.mark.parametrize(("key_type", "bits"), [("ed25519", None), ("rsa", 3072), ("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521)])
def test_keys_from_ssh_keygen_pass_with_its_fingerprint(keygen, key_type, bits):
    line, fingerprint = keygen(key_type, bits)
    parsed = parse_public_key(line)
    assert parsed["type"] == line.split()[0]
    assert parsed["comment"] == f"ops@{key_type}"
    assert parsed["fingerprint"] == fingerprint


@pytest.mark.parametrize(("key_type", "bits"), [("ed25519", None), ("rsa", 2048), ("ecdsa", 256)])
def test_every_cut_of_a_real_key_fails(keygen, key_type, bits):
    line, _fingerprint = keygen(key_type, bits)
    key_type_name, data, _comment = line.split(" ", 2)
    for keep in range(1, len(data)):
        with pytest.raises(SshKeyError, match="cut short|not whole base64|not base64|names"):
            parse_public_key(f"{key_type_name} {data[:keep]}")


def test_without_comment_and_with_spaces_in_comment():
    assert parse_public_key(ED25519.rsplit(" ", 1)[0])["comment"] == ""
    assert parse_public_key(ED25519 + " and more")["comment"] == "you@laptop and more"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "a key line has a type and base64 key data"),
        ("ssh-ed25519", "a key line has a type and base64 key data"),
        ("AAAAC3NzaC1lZDI1NTE5AAAAIBp0KHvO6x8SRNpsJ8xXnCWfCK0K1XrVt5Ub4ORbH9hB you@laptop", "key type 'AAAAC3Nza"),
        ('from="10.0.0.1" ' + ED25519, "key type 'from=\"10.0.0.1\"' is not one of"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "key type 'ssh-dss' is not one of"),
        (ED25519.replace("ssh-ed25519", "ssh-rsa", 1), "the line says ssh-rsa but its key data names 'ssh-ed25519'"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceWithTheRealOpsAdminKey0000 ops", "not whole base64 (69 characters)"),
        ("ssh-ed25519 AAAA*&^%", "not whole base64"),
        (ED25519 + "\nssh-ed25519 AAAA", "one line"),
        (42, "a key must be a string"),
    ],
)
def test_bad_lines_say_why(line, message):
    with pytest.raises(SshKeyError, match=None) as exc:
        parse_public_key(line)
    assert message in str(exc.value)


def test_a_key_with_a_field_too_many_fails():
    key_type, data, _comment = ED25519.split(" ", 2)
    blob = base64.b64decode(data) + b"\x00\x00\x00\x01x"
    with pytest.raises(SshKeyError, match="has 3 fields where it needs 2"):
        parse_public_key(f"{key_type} {base64.b64encode(blob).decode()}")


def test_an_ed25519_key_of_the_wrong_length_fails():
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x10" + b"k" * 16
    with pytest.raises(SshKeyError, match="is 16 bytes where it needs 32"):
        parse_public_key(f"ssh-ed25519 {base64.b64encode(blob).decode()}")


def test_an_ecdsa_line_naming_another_curve_fails():
    blob = b"\x00\x00\x00\x13ecdsa-sha2-nistp256\x00\x00\x00\x08nistp384\x00\x00\x00\x01\x04"
    with pytest.raises(SshKeyError, match="names curve 'nistp384'"):
        parse_public_key(f"ecdsa-sha2-nistp256 {base64.b64encode(blob).decode()}")
