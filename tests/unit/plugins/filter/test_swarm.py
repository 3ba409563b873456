"""Tests for plugins/filter/swarm.py (swarm_plan)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.filter.swarm import FilterModule, swarm_plan


def test_filter_module_exports():
    assert FilterModule().filters() == {"swarm_plan": swarm_plan}


def test_the_filter_returns_the_plan():
    got = swarm_plan(["a", "b", "c"], ["a", "b", "c"], [], {"postgres": "b"}, ["postgres"], ["a"], ["a"])
    assert got["nodes"]["b"] == {"role": "manager", "labels": {"connect.data.postgres": "true"}}


def test_a_bad_layout_raises_a_filter_error_naming_the_setting():
    with pytest.raises(AnsibleFilterError, match="swarm_managers lists 2 server"):
        swarm_plan(["a", "b"], ["a", "b"], [], {}, [], ["a"], ["a"])
