"""Unit tests for plugins/module_utils/_upstream.py (render_upstream, servers_in)."""

from __future__ import annotations

import pytest
from ansible_collections.connect.platform.plugins.module_utils._upstream import (
    UpstreamError,
    render_upstream,
    servers_in,
)
from hypothesis import given
from hypothesis import strategies as st

HEADER = "# Managed by connect.platform (nginx role and rolling_restart module): do not edit.\n"

NAME = "connect_app"

APP1_APP2 = (
    HEADER + "upstream connect_app {\n"
    "    server app1:3001 max_fails=1 fail_timeout=5s;\n"
    "    server app2:3001 max_fails=1 fail_timeout=5s;\n"
    "    keepalive 32;\n"
    "    keepalive_timeout 4s;\n"
    "}\n"
)


def test_exact_text_for_app1_app2():
    assert render_upstream(["app1", "app2"], name=NAME) == APP1_APP2


def test_defaults_are_the_documented_ones():
    assert render_upstream(["app1", "app2"], name=NAME) == render_upstream(
        ["app1", "app2"], name=NAME, port=3001, keepalive=32, keepalive_timeout=4, max_fails=1, fail_timeout=5
    )


def test_the_upstream_name_has_no_default():
    # One name for nginx's proxy_pass and the upstream file: the caller gives it, always.
    with pytest.raises(TypeError, match="name"):
        render_upstream(["app1", "app2"])  # pylint: disable=missing-kwoa  # the missing name is what is tested


def test_every_option_lands_in_the_text():
    text = render_upstream(("web_1", "web-2"), name="web", port=8080, keepalive=8, keepalive_timeout=3, max_fails=2, fail_timeout=10)
    assert text == (
        HEADER + "upstream web {\n"
        "    server web_1:8080 max_fails=2 fail_timeout=10s;\n"
        "    server web-2:8080 max_fails=2 fail_timeout=10s;\n"
        "    keepalive 8;\n"
        "    keepalive_timeout 3s;\n"
        "}\n"
    )


def test_order_is_kept():
    text = render_upstream(["app2", "app10", "app1"], name=NAME)
    assert [line.split()[1] for line in text.splitlines() if line.startswith("    server ")] == ["app2:3001", "app10:3001", "app1:3001"]


def test_single_server_and_boundaries_are_accepted():
    name63 = "a" + "b" * 62
    text = render_upstream([name63], name=name63, port=65535, keepalive=1, keepalive_timeout=1, max_fails=1, fail_timeout=1)
    assert f"    server {name63}:65535 max_fails=1 fail_timeout=1s;\n" in text
    assert render_upstream(["app1"], name=NAME, port=1).count("server app1:1 ") == 1


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ([], "an upstream needs at least one server; refusing to take the last instance out of rotation"),
        ((), "an upstream needs at least one server; refusing to take the last instance out of rotation"),
        ("app1", "servers must be a list of service names, got 'app1'"),
        (None, "servers must be a list of service names, got None"),
        ({"app1"}, "servers must be a list of service names, got {'app1'}"),
        (["app1", "app2", "app1"], "server 'app1' is listed twice"),
        (["App1"], "server 'App1' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["1app"], "server '1app' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["-app"], "server '-app' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["app.1"], "server 'app.1' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["app 1"], "server 'app 1' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["app1:3001"], "server 'app1:3001' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        ([""], "server '' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["a" * 64], f"server '{'a' * 64}' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["app1", 2], "server 2 is not a Compose service name (lower case letters, digits, '-' or '_')"),
        ([None], "server None is not a Compose service name (lower case letters, digits, '-' or '_')"),
    ],
)
def test_bad_server_lists(servers, message):
    with pytest.raises(UpstreamError) as info:
        render_upstream(servers, name=NAME)
    assert str(info.value) == message


@pytest.mark.parametrize("name", ["Connect", "connect.app", "", "9app", None, 5, "a" * 64])
def test_bad_upstream_name(name):
    with pytest.raises(UpstreamError) as info:
        render_upstream(["app1"], name=name)
    assert str(info.value) == f"upstream name {name!r} is not valid"


@pytest.mark.parametrize("option", ["port", "keepalive", "keepalive_timeout", "max_fails", "fail_timeout"])
@pytest.mark.parametrize("value", [0, -1, True, False, "3001", 1.5, None])
def test_non_positive_or_non_int_numbers(option, value):
    with pytest.raises(UpstreamError) as info:
        render_upstream(["app1"], name=NAME, **{option: value})
    assert str(info.value) == f"{option} must be a positive integer, got {value!r}"


def test_port_above_65535():
    with pytest.raises(UpstreamError) as info:
        render_upstream(["app1"], name=NAME, port=65536)
    assert str(info.value) == "port must be at most 65535, got 65536"


def test_upstream_error_is_a_value_error():
    assert issubclass(UpstreamError, ValueError)


@pytest.mark.parametrize(
    ("servers", "name", "message"),
    [
        (["app1\n"], "connect_app", "server 'app1\\n' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["app1", "app2\n"], "connect_app", "server 'app2\\n' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["app1"], "connect_app\n", "upstream name 'connect_app\\n' is not valid"),
    ],
    ids=["server", "second-server", "upstream-name"],
)
def test_trailing_newline_in_a_name_is_rejected(servers, name, message):
    # '$' with re.match would accept a name followed by a newline and render a broken 'server app1\n:3001' line
    with pytest.raises(UpstreamError) as info:
        render_upstream(servers, name=name)
    assert str(info.value) == message


def test_servers_in_round_trip_keeps_order():
    assert servers_in(render_upstream(["app2", "app1", "app3"], name=NAME)) == ["app2", "app1", "app3"]
    assert servers_in(APP1_APP2) == ["app1", "app2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("upstream connect_app {\n    keepalive 32;\n}\n", []),
        ("upstream x {\nserver app1:3001;\n\tserver  app2:80 weight=2;\n}\n", ["app1", "app2"]),
        ("#    server app9:3001;\n    server app1:3001;\n", ["app1"]),
        ("    server app1;\n    server 10.0.0.1:3001;\n", []),
    ],
)
def test_servers_in_hand_written_text(text, expected):
    assert servers_in(text) == expected


NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,62}", fullmatch=True)


@given(
    servers=st.lists(NAMES, min_size=1, max_size=8, unique=True),
    name=NAMES,
    port=st.integers(min_value=1, max_value=65535),
    keepalive=st.integers(min_value=1, max_value=10_000),
)
def test_servers_in_inverts_render_upstream(servers, name, port, keepalive):
    text = render_upstream(servers, name=name, port=port, keepalive=keepalive)
    assert servers_in(text) == servers
    assert text.startswith(HEADER) and text.endswith("}\n")
    assert text.count("\n") == len(servers) + 5
