"""Tests for plugins/filter/ssh.py (ssh_public_key)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.filter.ssh import FilterModule, ssh_public_key

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBp0KHvO6x8SRNpsJ8xXnCWfCK0K1XrVt5Ub4ORbH9hB you@laptop"


def test_filter_module_exports():
    assert FilterModule().filters() == {"ssh_public_key": ssh_public_key}


def test_a_whole_key_is_valid():
    assert ssh_public_key(ED25519) == {
        "valid": True,
        "problem": "",
        "type": "ssh-ed25519",
        "comment": "you@laptop",
        "fingerprint": "SHA256:+bD8JW7L7s6XLRdEg39qcOHsWcCDbpVgMruXjUVqolU",
    }


def test_a_cut_key_is_reported_not_raised():
    got = ssh_public_key(ED25519[:60])
    assert got["valid"] is False
    assert "cut short" in got["problem"]


def test_strict_raises_with_the_sentence():
    with pytest.raises(AnsibleFilterError, match="^ssh_public_key: the key data is not whole base64"):
        ssh_public_key(ED25519[:59], strict=True)


def test_sidecar_documents_the_filter(sidecar, example_results):
    doc = sidecar("ssh_public_key")
    assert doc["DOCUMENTATION"]["name"] == "ssh_public_key"
    assert example_results(doc["EXAMPLES"]) == [ssh_public_key(ED25519)["fingerprint"]]
