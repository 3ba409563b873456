"""Tests for plugins/filter/swarm.py (swarm_plan)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.filter.swarm import FilterModule, swarm_plan, swarm_stack


def test_filter_module_exports():
    assert FilterModule().filters() == {"swarm_plan": swarm_plan, "swarm_stack": swarm_stack}


def test_the_filter_returns_the_plan():
    got = swarm_plan(["a", "b", "c"], ["a", "b", "c"], [], {"postgres": "b"}, ["postgres"], ["a"], ["a"])
    assert got["nodes"]["b"] == {"role": "manager", "labels": {"connect.data.postgres": "true", "connect.server": "b"}}


def test_a_bad_layout_raises_a_filter_error_naming_the_setting():
    with pytest.raises(AnsibleFilterError, match="swarm_managers lists 2 server"):
        swarm_plan(["a", "b"], ["a", "b"], [], {}, [], ["a"], ["a"])


def test_the_stack_filter_translates_and_refuses_with_a_filter_error():
    project = {
        "services": {"app1": {"image": "a", "healthcheck": {"test": ["CMD", "true"]}}, "db": {"image": "d"}},
        "networks": {},
    }
    got = swarm_stack(project, "connect", "app", ["app1"], data_services=["db"])
    assert got["services"]["app"]["deploy"]["replicas"] == 1
    assert got["services"]["db"]["deploy"]["placement"] == {"constraints": ["node.labels.connect.data.db == true"]}
    with pytest.raises(AnsibleFilterError, match="data service cache is not a service"):
        swarm_stack(project, "connect", "app", ["app1"], data_services=["cache"])
