"""The stack on the Swarm: the contract's services, placed by the layout,
limited by the plan, serving through every public server's nginx."""

from __future__ import annotations

import json
from decimal import Decimal

import yaml
from ansible_collections.connect.platform.plugins.module_utils._units import parse_size
from conftest import ADDRESS, INVENTORY, LAYOUT, SERVERS, on, role_defaults, run, wait_for

STACK = role_defaults("compose_stack")
CONTRACT = STACK["compose_stack_services"]
PROJECT_NAME = STACK["compose_stack_project_name"]
# The harness's plan (the demo's harness.yml, which the cluster's group_vars share).
RESOURCES = yaml.safe_load((INVENTORY / "group_vars" / "connect_cluster" / "harness.yml").read_text())["compose_stack_resources"]
LEADER = SERVERS[0]
# The services site.yml's cluster play runs (the data tier, the app and nginx).
RUN = ["postgres", "pgbouncer", "redis-cache", "redis-queue", "app", "nginx"]


def name(key: str) -> str:
    return f"{PROJECT_NAME}_{CONTRACT[key]['service']}"


def inspect(key: str) -> dict:
    return json.loads(on(LEADER, f"docker service inspect {name(key)}"))[0]


def running_nodes(key: str) -> list[str]:
    fmt = "'{{.Node}} {{.CurrentState}}'"
    lines = on(LEADER, f"docker service ps {name(key)} --filter desired-state=running --format {fmt}").splitlines()
    return sorted(line.split()[0] for line in lines if line.split()[1:2] == ["Running"])


def https(server: str, path: str = "/api/health", method: str = "GET") -> tuple[int, dict, str]:
    """One request to a server's nginx from the machine (its address, the site's name)."""
    out = run(
        "curl",
        "-sk",
        "-X",
        method,
        "-o",
        "-",
        "-D",
        "/dev/stderr",
        "--max-time",
        "10",
        "--resolve",
        f"localhost:443:{ADDRESS[server]}",
        f"https://localhost{path}",
        check=False,
    )
    status, headers = 0, {}
    for line in out.stderr.splitlines():
        if line.startswith("HTTP/"):
            status, headers = int(line.split()[1]), {}
        elif ":" in line:
            key, _sep, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return status, headers, out.stdout


def test_every_service_runs_the_tasks_it_wants():
    fmt = "'{{.Name}} {{.Replicas}}'"
    replicas = dict(line.split()[:2] for line in on(LEADER, f"docker service ls --format {fmt}").splitlines())
    for key in RUN:
        running, _sep, wanted = replicas.get(name(key), "0/?").partition("/")
        assert running == wanted, f"{name(key)}: {replicas.get(name(key))}"
    assert replicas[name("app")] == "2/2", "two app instances (compose_stack_app_instances) as one service of two tasks"
    assert replicas[name("nginx")] == f"{len(LAYOUT['swarm_edge_servers'])}/{len(LAYOUT['swarm_edge_servers'])}"


def test_each_data_service_runs_on_the_server_that_holds_its_data():
    for key, server in LAYOUT["swarm_data_placement"].items():
        assert running_nodes(key) == [server], key
        spec = inspect(key)["Spec"]
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == [f"node.labels.connect.data.{key} == true"]
        # Stopped before it starts again: never two servers of one data directory.
        assert spec["UpdateConfig"]["Order"] == "stop-first"


def test_the_app_is_spread_over_the_servers_and_nginx_runs_on_each_edge_server():
    nodes = running_nodes("app")
    assert len(nodes) == len(set(nodes)) == 2, nodes
    assert running_nodes("nginx") == sorted(LAYOUT["swarm_edge_servers"])
    spec = inspect("app")["Spec"]
    assert spec["TaskTemplate"]["Placement"]["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.labels.connect.server"}}]
    update = spec["UpdateConfig"]
    assert (update["Parallelism"], update["Order"], update["FailureAction"]) == (1, "start-first", "rollback")
    # Longer than the health check's start period plus its retries (ns).
    health = spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    assert update["Monitor"] > health["StartPeriod"] + (health["Interval"] + health["Timeout"]) * health["Retries"]
    # Host-mode ports: each edge server's own nginx answers on 80/443 (no routing mesh here).
    ports = {(p["TargetPort"], p["PublishMode"]) for p in spec_ports("nginx")}
    assert ports == {(80, "host"), (443, "host")}


def spec_ports(key: str) -> list[dict]:
    return inspect(key)["Spec"]["EndpointSpec"].get("Ports", [])


def test_every_service_has_the_plans_limits_and_resolves_by_dns_round_robin():
    for key in RUN:
        spec = inspect(key)["Spec"]
        assert spec["EndpointSpec"]["Mode"] == "dnsrr", key
        resources = spec["TaskTemplate"]["Resources"]
        plan = RESOURCES[key]
        assert resources["Limits"]["NanoCPUs"] == int(Decimal(plan["cpus"]) * 10**9), key
        assert resources["Limits"]["MemoryBytes"] == parse_size(plan["mem_limit"]), key
        assert resources.get("Reservations", {}).get("MemoryBytes", 0) == parse_size(plan.get("mem_reservation", 0)), key
        assert resources["Limits"].get("Pids", 0) == STACK["compose_stack_pids_limits"][key], key
        container = spec["TaskTemplate"]["ContainerSpec"]
        assert container.get("CapabilityDrop") == ["ALL"], key


def answered_by_both_tasks(server: str):
    """A predicate for wait_for: one more request through the server; True once both tasks answered."""
    seen: set = set()

    def both() -> bool:
        status, headers, body = https(server)
        assert status == 200, (server, status, body)
        seen.add(headers.get("x-app-instance"))
        return seen == {"app1", "app2"}

    return both


def test_every_public_server_serves_the_app_and_spreads_requests_over_its_tasks():
    for server in LAYOUT["swarm_public_servers"]:
        # nginx finds both tasks by DNS, wherever they run (the addresses' order
        # rotates with each lookup, every nginx_swarm_dns_valid).
        wait_for(answered_by_both_tasks(server), 30, f"both app tasks answering through {server}", interval=0.5)


def test_a_write_through_one_server_is_read_through_another():
    status, _headers, body = https(SERVERS[1], "/api/items", "GET")
    assert status == 200, body
    created = run(
        "curl",
        "-sk",
        "--max-time",
        "10",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"name": "cluster-probe"}',
        "--resolve",
        f"localhost:443:{ADDRESS[SERVERS[1]]}",
        "https://localhost/api/items",
    ).stdout
    assert "cluster-probe" in created, created

    def seen_elsewhere():
        return "cluster-probe" in https(SERVERS[2], "/api/items")[2]

    wait_for(seen_elsewhere, 10, "the item read through another server")


def test_the_secrets_are_swarm_secrets_named_by_their_content():
    secrets = on(LEADER, "docker secret ls --format '{{.Name}}'").split()
    postgres = [s for s in secrets if s.startswith(f"{PROJECT_NAME}_postgres_superuser_password_")]
    assert len(postgres) >= 1, secrets
    refs = [r["SecretName"] for r in inspect("postgres")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]]
    # The digest in the name is the file's (the manager's copy; every server keeps the same).
    digest = on(LEADER, f"sha256sum {STACK['compose_stack_root']}/secrets/postgres_superuser_password").split()[0]
    assert refs == [f"{PROJECT_NAME}_postgres_superuser_password_{digest[:12]}"], (refs, postgres)
    # Every server keeps the same generated values (pgbouncer's userlist and the app's .env agree).
    sums = {s: on(s, f"cd {STACK['compose_stack_root']}/secrets && sha256sum $(ls | sort)") for s in SERVERS}
    assert len(set(sums.values())) == 1, sums
