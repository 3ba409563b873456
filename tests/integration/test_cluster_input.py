"""A bad cluster layout is refused before anything changes: no server needed.

site.yml's cluster play against three hosts nobody answers for (127.0.0.1,
ports 1-3), with production's values (the same ones test_bad_input.py
gives), the example layout of inventories/production-cluster, and one bad
value. A case passes when every host fails naming the setting before Ansible
tried to connect (changed=0, unreachable=0); the control passes the checks
and meets the unreachable hosts.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from test_bad_input import REPO, WORKERS, _run, admin_key, inventory  # noqa: F401  # pylint: disable=unused-import

LAYOUT = yaml.safe_load((REPO / "inventories" / "production-cluster" / "group_vars" / "connect_cluster" / "cluster.yml").read_text())
HOSTS = LAYOUT["swarm_managers"]
A, B, C = HOSTS

# (id, extra vars, text the output must contain)
CASES = [
    ("two-managers", {"swarm_managers": [A, B], "swarm_workers": [C]}, "swarm_managers lists 2 server(s)"),
    ("server-listed-twice", {"swarm_managers": [A, B, C, A]}, f"swarm_managers lists {A} more than once"),
    ("manager-and-worker", {"swarm_workers": [C]}, f"{C} is in both swarm_managers and swarm_workers"),
    ("data-on-no-server", {"swarm_data_placement": {"redis-queue": A}}, "swarm_data_placement['postgres'] names no server"),
    (
        "data-on-two-servers",
        {"swarm_data_placement": {"postgres": [A, B], "redis-queue": A}},
        f"swarm_data_placement['postgres'] names 2 servers ({A}, {B})",
    ),
    (
        "public-server-without-nginx",
        {"swarm_edge_servers": [A, B]},
        f"swarm_public_servers names {C}, which runs no nginx",
    ),
    ("swarm-port-out-of-range", {"swarm_peer_ports": [{"port": 70000, "proto": "tcp"}]}, "swarm_peer_ports contains 70000/tcp"),
    ("swarm-port-protocol", {"swarm_peer_ports": [{"port": 2377, "proto": "sctp"}]}, "swarm_peer_ports"),
]


@pytest.fixture(scope="session")
def cluster_inventory(inventory, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """test_bad_input's production values for the group connect_cluster, the example layout, three dead hosts."""
    root = tmp_path_factory.mktemp("cluster-inventory")
    group_vars = root / "group_vars" / "connect_cluster"
    shutil.copytree(inventory / "group_vars" / "connect_servers", group_vars)
    (group_vars / "cluster.yml").write_text(yaml.safe_dump(LAYOUT))
    hosts = {name: {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "ops-admin"} for port, name in enumerate(HOSTS, 1)}
    (root / "hosts.yml").write_text(yaml.safe_dump({"connect_cluster": {"hosts": hosts}}))
    return root


@pytest.fixture(scope="session")
def cluster_runs(cluster_inventory):
    jobs = {case_id: extra for case_id, extra, _message in CASES}
    jobs["control"] = {}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {case_id: pool.submit(_run, cluster_inventory, "playbooks/site.yml", extra) for case_id, extra in jobs.items()}
        return {case_id: future.result() for case_id, future in futures.items()}


@pytest.mark.parametrize(("case_id", "message"), [pytest.param(c[0], c[2], id=c[0]) for c in CASES])
def test_a_bad_layout_fails_on_every_server_before_connecting(cluster_runs, case_id, message):
    run = cluster_runs[case_id]
    assert run.rc != 0, run
    assert message in run.flat, run
    assert set(run.hosts) == set(HOSTS), run
    for recap in run.hosts.values():
        assert recap == {**recap, "changed": 0, "unreachable": 0, "failed": 1}, run


def test_the_example_layout_passes_the_checks_then_meets_the_unreachable_servers(cluster_runs):
    run = cluster_runs["control"]
    assert set(run.hosts) == set(HOSTS), run
    for recap in run.hosts.values():
        assert recap["failed"] == 0, run
        assert recap["unreachable"] == 1, run
        assert recap["changed"] == 0, run
