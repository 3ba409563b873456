"""Tests for plugins/module_utils/_swarm.py (the cluster layout)."""

from __future__ import annotations

import pytest
from ansible_collections.connect.platform.plugins.module_utils._swarm import (
    EDGE_LABEL,
    PUBLIC_LABEL,
    SwarmPlanError,
    data_label,
    swarm_plan,
)

SERVERS = ["s1", "s2", "s3"]
DATA = ["postgres", "redis-queue"]


def plan(**changes):
    args = {
        "servers": SERVERS,
        "managers": SERVERS,
        "workers": [],
        "data_placement": {"postgres": "s1", "redis-queue": "s1"},
        "data_services": DATA,
        "edge": SERVERS,
        "public": SERVERS,
    }
    args.update(changes)
    return swarm_plan(**args)


def refused(**changes):
    with pytest.raises(SwarmPlanError) as exc:
        plan(**changes)
    return str(exc.value)


def test_three_managers_each_with_its_labels():
    got = plan(public=["s1", "s2"])
    assert got["managers"] == SERVERS
    assert got["workers"] == []
    assert got["nodes"]["s1"] == {
        "role": "manager",
        "labels": {
            "connect.data.postgres": "true",
            "connect.data.redis-queue": "true",
            EDGE_LABEL: "true",
            PUBLIC_LABEL: "true",
        },
    }
    assert got["nodes"]["s3"] == {"role": "manager", "labels": {EDGE_LABEL: "true"}}
    assert got["labels"] == ["connect.data.postgres", "connect.data.redis-queue", EDGE_LABEL, PUBLIC_LABEL]


def test_workers_are_workers_and_data_may_live_apart():
    got = plan(
        servers=["s1", "s2", "s3", "w1"],
        workers=["w1"],
        data_placement={"postgres": "s2", "redis-queue": "w1"},
        edge=["s1"],
        public=["s1"],
    )
    assert got["nodes"]["w1"] == {"role": "worker", "labels": {"connect.data.redis-queue": "true"}}
    assert got["nodes"]["s2"]["labels"] == {"connect.data.postgres": "true"}
    assert got["workers"] == ["w1"]


def test_data_label():
    assert data_label("postgres") == "connect.data.postgres"


@pytest.mark.parametrize("managers", [["s1", "s2"], ["s1"], [], ["s1", "s2", "s3", "s4"]])
def test_managers_without_quorum_after_a_loss_are_refused(managers):
    servers = ["s1", "s2", "s3", "s4"]
    workers = [s for s in servers if s not in managers]
    msg = refused(servers=servers, managers=managers, workers=workers)
    assert msg.startswith(f"swarm_managers lists {len(managers)} server(s)")
    assert "list 3 or 5 managers" in msg


def test_a_server_listed_twice_is_refused():
    assert "swarm_managers lists s1 more than once" in refused(managers=["s1", "s2", "s1"])
    assert "in both swarm_managers and swarm_workers" in refused(workers=["s3"])


def test_a_server_outside_the_group_or_left_out_is_refused():
    assert "s9 in swarm_managers/swarm_workers is not a host of the cluster group" in refused(managers=["s1", "s2", "s9"])
    msg = refused(servers=["s1", "s2", "s3", "s4"])
    assert "s4 is in the cluster group but in neither" in msg


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ({"redis-queue": "s1"}, "swarm_data_placement['postgres'] names no server"),
        ({"postgres": [], "redis-queue": "s1"}, "swarm_data_placement['postgres'] names no server"),
        ({"postgres": ["s1", "s2"], "redis-queue": "s1"}, "names 2 servers (s1, s2)"),
        ({"postgres": "s7", "redis-queue": "s1"}, "names s7, which is not a server of the cluster"),
        ({"postgres": "s1", "redis-queue": "s1", "redis-cache": "s2"}, "names redis-cache, which is not a data"),
    ],
)
def test_a_data_service_on_no_server_or_two_is_refused(placement, expected):
    assert expected in refused(data_placement=placement)


def test_a_one_item_list_places_a_data_service():
    got = plan(data_placement={"postgres": ["s2"], "redis-queue": "s1"})
    assert got["nodes"]["s2"]["labels"]["connect.data.postgres"] == "true"


def test_a_public_server_without_nginx_is_refused():
    msg = refused(edge=["s1", "s2"], public=["s2", "s3"])
    assert msg.startswith("swarm_public_servers names s3, which runs no nginx")
    assert "add it to swarm_edge_servers" in msg


def test_no_edge_or_no_public_server_is_refused():
    assert "swarm_edge_servers is empty" in refused(edge=[])
    assert "swarm_public_servers is empty" in refused(public=[])
    assert "swarm_edge_servers names s8" in refused(edge=["s1", "s8"])
    assert "swarm_public_servers lists s1 more than once" in refused(public=["s1", "s1"])


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"managers": "s1,s2,s3"}, "swarm_managers must be a list"),
        ({"workers": [""]}, "swarm_workers holds ''"),
        ({"data_placement": ["s1"]}, "swarm_data_placement must map"),
    ],
)
def test_wrong_types_are_named(changes, expected):
    assert expected in refused(**changes)
