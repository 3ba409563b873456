"""The Swarm site.yml forms: nodes, labels, exposure, overlay, a lost manager."""

from __future__ import annotations

import time

import pytest
from ansible_collections.connect.platform.plugins.module_utils._swarm import swarm_plan
from conftest import ADDRESS, LAYOUT, NETWORK, PROJECT, SERVER_PROBE_IMAGE, SERVERS, nodes, on, role_defaults, run, wait_for

SWARM = role_defaults("swarm")
DATA_SERVICES = [k for k, v in role_defaults("compose_stack")["compose_stack_services"].items() if v.get("data")]
PLAN = swarm_plan(
    SERVERS,
    LAYOUT["swarm_managers"],
    LAYOUT["swarm_workers"],
    LAYOUT["swarm_data_placement"],
    DATA_SERVICES,
    LAYOUT["swarm_edge_servers"],
    LAYOUT["swarm_public_servers"],
)


def by_host(server: str) -> dict:
    return {n["Description"]["Hostname"]: n for n in nodes(server)}


def test_every_server_is_a_ready_manager_and_one_leads():
    for server in SERVERS:
        seen = by_host(server)
        assert sorted(seen) == sorted(SERVERS), f"{server} sees {sorted(seen)}"
        assert all(n["Status"]["State"] == "ready" for n in seen.values())
        assert [n["Spec"]["Role"] for n in seen.values()] == ["manager"] * 3
        assert sum(n["ManagerStatus"].get("Leader", False) for n in seen.values()) == 1
        # Each node advertises the server's own address (UFW trusts these).
        assert {h: n["ManagerStatus"]["Addr"] for h, n in seen.items()} == {h: f"{a}:2377" for h, a in ADDRESS.items()}


def test_each_node_carries_the_plans_labels_and_no_other_owned_label():
    seen = by_host(SERVERS[0])
    for server in SERVERS:
        labels = seen[server]["Spec"]["Labels"] or {}
        owned = {k: v for k, v in labels.items() if k in PLAN["labels"]}
        assert owned == PLAN["nodes"][server]["labels"], server
    # The data services live on the layout's one server.
    for service in DATA_SERVICES:
        holders = [s for s in SERVERS if (seen[s]["Spec"]["Labels"] or {}).get(f"connect.data.{service}") == "true"]
        assert holders == [LAYOUT["swarm_data_placement"][service]]


def test_swarms_ports_are_open_to_the_peers_only_in_ufw():
    for server in SERVERS:
        rules = [line for line in on(server, "ufw show added").splitlines() if "comment 'swarm " in line]
        expected = {
            f"ufw allow from {ADDRESS[peer]} to any port {p['port']} proto {p['proto']} comment 'swarm {peer}'"
            for peer in SERVERS
            if peer != server
            for p in SWARM["swarm_peer_ports"]
        }
        assert set(rules) == expected, server
        assert "Status: active" in on(server, "ufw status")


def test_from_a_fourth_address_only_ssh_answers_and_swarm_answers_only_peers(outsider):
    # Swarm's TCP ports: refused from outside, reachable between servers.
    for server in SERVERS:
        address = ADDRESS[server]
        assert outsider(address, 22), f"SSH on {server}"
        for port in (2377, 7946):
            assert not outsider(address, port), f"{server}:{port} answers a fourth address"
        peer = next(s for s in SERVERS if s != server)
        for port in (2377, 7946):
            # Fails (a timeout) when UFW drops the peer.
            on(peer, f"python3 -c \"import socket; socket.create_connection(('{address}', {port}), 3)\"")


@pytest.fixture
def overlay_service():
    """A global service on an attachable overlay network, one task per server (dnsrr: no IPVS here)."""
    leader = SERVERS[0]
    # A new network name each time: Swarm may still hold a just-removed one's name.
    network = f"connect-probe-{int(time.time())}"
    on(leader, "docker service rm connect-probe >/dev/null 2>&1; true")
    on(leader, f"docker network create -d overlay --attachable {network}")
    on(
        leader,
        f"docker service create -d --name connect-probe --mode global --endpoint-mode dnsrr"
        f" --network {network} {SERVER_PROBE_IMAGE}"
        " busybox sh -c 'echo $(hostname) > /tmp/index.html; busybox httpd -f -p 8080 -h /tmp'",
    )
    yield "connect-probe"
    # The network is removable once the tasks are gone.
    on(leader, f"docker service rm connect-probe; for i in $(seq 30); do docker network rm {network} && break; sleep 1; done", check=False)


def test_an_overlay_network_carries_traffic_between_servers(overlay_service):
    leader = SERVERS[0]

    def running():
        fmt = "'{{.Node}} {{.CurrentState}}'"
        tasks = on(leader, f"docker service ps {overlay_service} --filter desired-state=running --format {fmt}")
        up = {line.split()[0] for line in tasks.splitlines() if " Running " in f" {line} "}
        return up if up == set(SERVERS) else None

    wait_for(running, 120, "a probe task running on every server")
    # From the task on the first server, every task answers by DNS round robin.
    task = on(leader, f"docker ps -q --filter label=com.docker.swarm.service.name={overlay_service}").split()[0]

    def one_address_per_server():
        # "Address: 10.200.2.4" (the server's own line is "Address: 127.0.0.11:53")
        found = {
            line.split()[-1]
            for line in on(leader, f"docker exec {task} busybox nslookup tasks.{overlay_service}").splitlines()
            if line.startswith("Address") and ":" not in line.split()[-1]
        }
        return found if len(found) == len(SERVERS) else None

    addresses = wait_for(one_address_per_server, 30, "tasks.<service> resolving to one address per server")
    # (busybox's wget segfaults with -q or -T here: coreutils' timeout bounds it.)
    fetch = f"timeout 10 docker exec {task} busybox wget -O - http://{{}}:8080/ 2>/dev/null"
    hostnames = {on(leader, fetch.format(a)).strip() for a in addresses}
    assert len(hostnames) == len(SERVERS), hostnames


def test_check_mode_after_converge_predicts_no_change(playbook):
    result = playbook("--check")
    assert result.rc == 0, result
    assert set(result.hosts) == set(SERVERS), result
    assert all(recap["changed"] == 0 for recap in result.hosts.values()), result.hosts


def test_a_lost_manager_leaves_a_working_swarm_and_rejoins_when_back():
    lost, leader = SERVERS[-1], SERVERS[0]
    run("docker", "kill", "--signal", "KILL", lost)
    try:
        wait_for(lambda: by_host(leader)[lost]["Status"]["State"] == "down", 60, f"{lost} seen down")
        # The two others keep the quorum: the Raft store still takes writes.
        on(leader, "echo probe | docker config create connect-probe-quorum - && docker config rm connect-probe-quorum")
    finally:
        started = time.monotonic()
        run("docker", "start", lost)
    wait_for(lambda: on(lost, "systemctl is-system-running", check=False).strip() in ("running", "degraded"), 90, "boot")

    def back_as_manager():
        node = by_host(leader)[lost]
        return node["Status"]["State"] == "ready" and node["ManagerStatus"]["Reachability"] == "reachable"

    wait_for(back_as_manager, 120, f"{lost} back as a reachable manager")
    print(f"\n{lost} rejoined as a reachable manager {time.monotonic() - started:.1f} s after its start")


def test_a_rebuilt_server_rejoins_with_site_limit_and_its_old_node_is_removed(playbook):
    lost, leader = SERVERS[-1], SERVERS[0]
    old_id = by_host(leader)[lost]["ID"]
    harness = f"{PROJECT}/harness/server.sh"
    run("bash", harness, "destroy", lost)
    run("bash", harness, "create", lost, "--network", NETWORK, "--ip", ADDRESS[lost], timeout=180)
    started = time.monotonic()
    result = playbook("--limit", lost)
    print(f"\n{lost} rebuilt by site.yml --limit in {time.monotonic() - started:.0f} s")
    assert result.rc == 0, result
    assert set(result.hosts) == {lost}, result
    seen = nodes(leader)
    assert old_id not in {n["ID"] for n in seen}, "the old node is still in the Swarm"
    assert sorted(n["Description"]["Hostname"] for n in seen) == sorted(SERVERS)
    assert all(n["Status"]["State"] == "ready" and n["Spec"]["Role"] == "manager" for n in seen), seen
    new = next(n for n in seen if n["Description"]["Hostname"] == lost)
    assert {k: v for k, v in (new["Spec"]["Labels"] or {}).items() if k in PLAN["labels"]} == PLAN["nodes"][lost]["labels"]
    # The others accept the new server's Swarm traffic (their rules name its address, unchanged).
    on(lost, f"python3 -c \"import socket; socket.create_connection(('{ADDRESS[leader]}', 2377), 3)\"")
