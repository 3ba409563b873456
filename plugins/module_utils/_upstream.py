# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""The nginx upstream of the app instances, rendered in ONE place.

The ``rolling_restart`` module writes it (the app role calls the module at
converge and for releases) and rewrites it to take one instance out of
rotation and put it back. The upstream name has no default here: the caller
passes the one nginx's ``proxy_pass`` uses.
"""

from __future__ import annotations

import re

__all__ = ["UpstreamError", "render_upstream", "servers_in"]

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_HEADER = "# Managed by connect.platform (nginx role and rolling_restart module): do not edit.\n"


class UpstreamError(ValueError):
    """Invalid input for the upstream block."""


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UpstreamError(f"{what} must be a positive integer, got {value!r}")
    return value


def render_upstream(servers, *, name, port=3001, keepalive=32, keepalive_timeout=4, max_fails=1, fail_timeout=5):
    """Return the text of the ``upstream`` block ``name`` over ``servers``
    (Compose service names, resolved by Docker's DNS when nginx loads the config).

    Order is kept (round robin starts with the first). ``keepalive_timeout``
    (seconds) must stay below the app's idle keep-alive timeout, or nginx can
    reuse a connection the app is closing."""
    if isinstance(servers, str) or not isinstance(servers, (list, tuple)):
        raise UpstreamError(f"servers must be a list of service names, got {servers!r}")
    if not servers:
        raise UpstreamError("an upstream needs at least one server; refusing to take the last instance out of rotation")
    seen = set()
    for server in servers:
        if not isinstance(server, str) or not _NAME.fullmatch(server):
            raise UpstreamError(f"server {server!r} is not a Compose service name (lower case letters, digits, '-' or '_')")
        if server in seen:
            raise UpstreamError(f"server {server!r} is listed twice")
        seen.add(server)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UpstreamError(f"upstream name {name!r} is not valid")
    _positive_int(port, "port")
    if port > 65535:
        raise UpstreamError(f"port must be at most 65535, got {port}")
    for value, what in (
        (keepalive, "keepalive"),
        (keepalive_timeout, "keepalive_timeout"),
        (max_fails, "max_fails"),
        (fail_timeout, "fail_timeout"),
    ):
        _positive_int(value, what)
    lines = [_HEADER, f"upstream {name} {{\n"]
    lines += [f"    server {s}:{port} max_fails={max_fails} fail_timeout={fail_timeout}s;\n" for s in servers]
    lines += [f"    keepalive {keepalive};\n", f"    keepalive_timeout {keepalive_timeout}s;\n", "}\n"]
    return "".join(lines)


_SERVER_LINE = re.compile(r"^\s*server\s+([a-z][a-z0-9_-]*):\d+\b", re.M)


def servers_in(text):
    """The service names an upstream file currently routes to, in order."""
    return _SERVER_LINE.findall(text or "")
