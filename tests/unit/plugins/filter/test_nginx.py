"""Tests for plugins/filter/nginx.py (nginx_upstream)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.filter.nginx import FilterModule, nginx_upstream
from ansible_collections.connect.platform.plugins.module_utils._upstream import UpstreamError, render_upstream


def test_filter_module_exports():
    assert FilterModule().filters() == {"nginx_upstream": nginx_upstream}


def test_result_is_render_upstream():
    assert nginx_upstream(["app1", "app2"]) == render_upstream(["app1", "app2"])
    assert nginx_upstream(["app1", "app2"]).splitlines()[2] == "    server app1:3001 max_fails=1 fail_timeout=5s;"


def test_tuple_is_accepted_and_order_kept():
    assert nginx_upstream(("app2", "app1")) == render_upstream(["app2", "app1"])


def test_string_numbers_from_jinja_are_cast():
    got = nginx_upstream(["app1"], name="web", port="8080", keepalive="16", keepalive_timeout="3", max_fails="2", fail_timeout="7")
    assert got == render_upstream(["app1"], name="web", port=8080, keepalive=16, keepalive_timeout=3, max_fails=2, fail_timeout=7)
    assert "    server app1:8080 max_fails=2 fail_timeout=7s;\n" in got


@pytest.mark.parametrize(
    ("servers", "options", "message"),
    [
        ([], {}, "nginx_upstream: an upstream needs at least one server; refusing to take the last instance out of rotation"),
        ("app1", {}, "nginx_upstream: servers must be a list of service names, got 'app1'"),
        (["app1", "app1"], {}, "nginx_upstream: server 'app1' is listed twice"),
        (["App1"], {}, "nginx_upstream: server 'App1' is not a Compose service name (lower case letters, digits, '-' or '_')"),
        (["app1"], {"port": "0"}, "nginx_upstream: port must be a positive integer, got 0"),
        (["app1"], {"port": 70000}, "nginx_upstream: port must be at most 65535, got 70000"),
        (["app1"], {"keepalive": "-3"}, "nginx_upstream: keepalive must be a positive integer, got -3"),
        (["app1"], {"name": "Bad Name"}, "nginx_upstream: upstream name 'Bad Name' is not valid"),
    ],
)
def test_upstream_errors_become_filter_errors(servers, options, message):
    with pytest.raises(AnsibleFilterError) as info:
        nginx_upstream(servers, **options)
    assert str(info.value) == message
    assert isinstance(info.value.orig_exc, UpstreamError)
    assert isinstance(info.value.__cause__, UpstreamError)


@pytest.mark.parametrize(
    ("servers", "options", "message", "cause"),
    [
        (["app1"], {"port": "abc"}, "nginx_upstream: invalid literal for int() with base 10: 'abc'", ValueError),
        (
            ["app1"],
            {"max_fails": None},
            "nginx_upstream: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'",
            TypeError,
        ),
        (None, {}, "nginx_upstream: 'NoneType' object is not iterable", TypeError),
        (5, {}, "nginx_upstream: 'int' object is not iterable", TypeError),
    ],
)
def test_cast_errors_become_filter_errors(servers, options, message, cause):
    with pytest.raises(AnsibleFilterError) as info:
        nginx_upstream(servers, **options)
    assert str(info.value) == message
    assert type(info.value.orig_exc) is cause


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("key", ["port", "keepalive", "keepalive_timeout", "max_fails", "fail_timeout"])
def test_boolean_numbers_are_rejected(key, value):
    # int(True) would be 1: port=true must not render 'server app1:1'
    with pytest.raises(AnsibleFilterError) as info:
        nginx_upstream(["app1"], **{key: value})
    assert str(info.value) == f"nginx_upstream: {key} must be a number, got {value}"


def test_numbers_equal_to_booleans_are_still_accepted():
    got = nginx_upstream(["app1"], port=1, keepalive=1, keepalive_timeout="1", max_fails=1, fail_timeout=1)
    assert got == render_upstream(["app1"], port=1, keepalive=1, keepalive_timeout=1, max_fails=1, fail_timeout=1)
