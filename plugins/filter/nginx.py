# Copyright: (c) 2025, Connect platform operations
# Apache License 2.0 (see galaxy.yml)
"""nginx filter: connect.platform.nginx_upstream.

Documentation lives in the sidecar file nginx_upstream.yml. The text comes
from module_utils/_upstream.py, which the rolling_restart module uses too, so
a converge after a release finds the file it would write.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.module_utils._upstream import (
    render_upstream,
)


def nginx_upstream(servers, *, name="connect_app", port=3001, keepalive=32, keepalive_timeout=4, max_fails=1, fail_timeout=5):
    """The upstream block over the app services (see nginx_upstream.yml)."""
    for key, value in (
        ("port", port),
        ("keepalive", keepalive),
        ("keepalive_timeout", keepalive_timeout),
        ("max_fails", max_fails),
        ("fail_timeout", fail_timeout),
    ):
        if isinstance(value, bool):
            raise AnsibleFilterError(f"nginx_upstream: {key} must be a number, got {value!r}")
    try:
        return render_upstream(
            list(servers) if not isinstance(servers, str) else servers,
            name=name,
            port=int(port),
            keepalive=int(keepalive),
            keepalive_timeout=int(keepalive_timeout),
            max_fails=int(max_fails),
            fail_timeout=int(fail_timeout),
        )
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"nginx_upstream: {exc}", orig_exc=exc) from exc


class FilterModule:
    """nginx filters."""

    def filters(self):
        return {"nginx_upstream": nginx_upstream}
