# Copyright: (c) 2026, Connect platform operations
# Apache License 2.0 (see galaxy.yml)
from __future__ import annotations

import copy

import pytest
from ansible_collections.connect.platform.plugins.module_utils._swarm_stack import (
    SwarmStackError,
    duration_seconds,
    stack_from_project,
    update_monitor,
)

HEALTH = {"test": ["CMD", "true"], "interval": "10s", "timeout": "5s", "retries": 3, "start_period": "20s"}


def instance(name):
    return {
        "image": "connect-app:current",
        "pull_policy": "never",
        "container_name": f"connect_{name}",
        "restart": "unless-stopped",
        "cap_drop": ["ALL"],
        "env_file": ["/opt/connect/.env.production"],
        "environment": {"INSTANCE": name, "LOG_DIR": "/var/log/connect"},
        "read_only": True,
        "tmpfs": ["/tmp"],
        "volumes": [f"/opt/connect/logs/{name}:/var/log/connect", "/opt/connect/uploads:/var/lib/connect/uploads"],
        "networks": ["frontend", "backend"],
        "cpus": 3.0,
        "mem_limit": "10g",
        "mem_reservation": "8g",
        "pids_limit": 512,
        "healthcheck": dict(HEALTH),
    }


PROJECT = {
    "services": {
        "app1": instance("app1"),
        "app2": instance("app2"),
        "nginx": {
            "image": "nginx:1.22",
            "container_name": "connect_nginx",
            "restart": "unless-stopped",
            "ports": ["0.0.0.0:80:80", "0.0.0.0:443:443"],
            "tmpfs": ["/var/cache/nginx:size=64m", "/run:size=1m"],
            "networks": ["frontend"],
            "cpus": 1.0,
            "mem_limit": "2g",
        },
        "postgres": {
            "image": "postgres:15",
            "restart": "unless-stopped",
            "init": True,
            "secrets": ["postgres_superuser_password"],
            "volumes": ["/opt/connect/data/postgres:/var/lib/postgresql/data"],
            "networks": ["backend", "egress"],
            "shm_size": "1g",
            "depends_on": {"x": {"condition": "service_healthy"}},
        },
        "pgbouncer": {"image": "pgbouncer:1.18", "restart": "unless-stopped", "networks": ["backend"]},
    },
    "networks": {"frontend": {"external": True}, "backend": {"external": True}, "egress": {"external": True}},
    "secrets": {"postgres_superuser_password": {"file": "/opt/connect/secrets/postgres_superuser_password"}},
}
NETWORKS = {"frontend": {"internal": False}, "backend": {"internal": True}, "egress": {"internal": False}}


def build(project=None, **kwargs):
    args = {
        "stack": "connect",
        "app_service": "app",
        "app_instances": ["app1", "app2"],
        "edge_service": "nginx",
        "data_services": ["postgres"],
        "networks": NETWORKS,
        "secret_digests": {"postgres_superuser_password": "0123456789abcdef0123"},
    }
    args.update(kwargs)
    return stack_from_project(copy.deepcopy(project or PROJECT), **args)


def test_the_instances_become_one_replicated_service_spread_over_the_servers():
    app = build()["services"]["app"]
    assert app["deploy"]["replicas"] == 2
    assert app["deploy"]["placement"] == {"preferences": [{"spread": "node.labels.connect.server"}]}
    # Each task's own name where each instance had its own.
    assert app["environment"]["INSTANCE"] == "app{{.Task.Slot}}"
    assert app["volumes"][0] == "/opt/connect/logs/app{{.Task.Slot}}:/var/log/connect"
    assert app["volumes"][1] == "/opt/connect/uploads:/var/lib/connect/uploads"
    assert "app1" not in build()["services"] and "app2" not in build()["services"]


def test_the_rolling_update_is_one_at_a_time_start_first_rolled_back_and_outlasts_the_health_check():
    deploy = build()["services"]["app"]["deploy"]
    # 20 s start period + (10 s + 5 s) x 3 retries + 5 s.
    assert deploy["update_config"] == {
        "parallelism": 1,
        "delay": "0s",
        "order": "start-first",
        "failure_action": "rollback",
        "monitor": "70s",
    }
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["rollback_config"]["monitor"] == "70s"
    assert build(app_update={"delay": "5s"})["services"]["app"]["deploy"]["update_config"]["delay"] == "5s"


def test_resources_from_the_plan_become_deploy_resources():
    app = build()["services"]["app"]
    assert app["deploy"]["resources"] == {"limits": {"cpus": "3.0", "memory": "10g", "pids": 512}, "reservations": {"memory": "8g"}}
    for key in ("cpus", "mem_limit", "mem_reservation", "pids_limit", "container_name", "pull_policy", "restart", "tmpfs"):
        assert key not in app
    assert app["deploy"]["restart_policy"] == {"condition": "any", "delay": "5s"}
    assert {"type": "tmpfs", "target": "/tmp"} in app["volumes"]


def test_nginx_runs_on_each_edge_server_with_host_mode_ports():
    nginx = build()["services"]["nginx"]
    assert nginx["deploy"]["mode"] == "global"
    assert nginx["deploy"]["placement"] == {"constraints": ["node.labels.connect.edge == true"]}
    assert nginx["ports"] == [
        {"target": 80, "published": 80, "protocol": "tcp", "mode": "host"},
        {"target": 443, "published": 443, "protocol": "tcp", "mode": "host"},
    ]
    assert {"type": "tmpfs", "target": "/var/cache/nginx", "tmpfs": {"size": 64 * 1024**2}} in nginx["volumes"]


def test_a_data_service_is_pinned_to_its_server_and_never_runs_twice():
    postgres = build()["services"]["postgres"]
    assert postgres["deploy"]["placement"] == {"constraints": ["node.labels.connect.data.postgres == true"]}
    assert postgres["deploy"]["replicas"] == 1
    assert postgres["deploy"]["update_config"]["order"] == "stop-first"
    assert {"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": 1024**3}} in postgres["volumes"]
    assert "depends_on" not in postgres
    assert postgres["init"] is True


def test_every_service_resolves_by_dns_round_robin():
    assert {name: s["deploy"]["endpoint_mode"] for name, s in build()["services"].items()} == dict.fromkeys(
        ("app", "nginx", "postgres", "pgbouncer"), "dnsrr"
    )


def test_networks_become_overlays_internal_where_the_bridge_was_and_encrypted_when_asked():
    networks = build()["networks"]
    assert networks["backend"] == {"driver": "overlay", "attachable": True, "internal": True}
    assert networks["frontend"] == {"driver": "overlay", "attachable": True}
    assert build(encrypted=True)["networks"]["egress"]["driver_opts"] == {"encrypted": ""}


def test_a_secret_is_named_by_its_content():
    assert build()["secrets"] == {
        "postgres_superuser_password": {
            "file": "/opt/connect/secrets/postgres_superuser_password",
            "name": "connect_postgres_superuser_password_0123456789ab",
        }
    }
    with pytest.raises(SwarmStackError, match="secret postgres_superuser_password has no digest"):
        build(secret_digests={})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["services"]["app2"].update(cpus=2.0), "app instance app2 differs from app1 beyond its name"),
        (lambda p: p["services"]["pgbouncer"].update(privileged=True), "service pgbouncer: privileged has no translation"),
        (lambda p: p["services"]["nginx"].update(ports=["80"]), "port '80' must name its published and target port"),
        (lambda p: p["services"]["nginx"].update(tmpfs=["/run:mode=1777"]), "tmpfs option 'mode=1777'"),
        (lambda p: p["services"]["pgbouncer"].update(networks=["dmz"]), "network dmz is not one of the stack's networks"),
        (lambda p: p["services"]["pgbouncer"].update(restart="sometimes"), "restart 'sometimes' is not one of"),
        (lambda p: p["services"]["app1"].pop("healthcheck") and p["services"]["app2"].pop("healthcheck"), "needs a health check"),
        (lambda p: p["services"].pop("app2"), "the app instances app2 are not services of the project"),
        (lambda p: p["services"].update(app={}), "already has a service app"),
    ],
)
def test_what_cannot_be_translated_faithfully_is_refused(change, message):
    project = copy.deepcopy(PROJECT)
    change(project)
    with pytest.raises(SwarmStackError, match=message):
        build(project)


def test_the_named_services_must_exist():
    with pytest.raises(SwarmStackError, match="data service redis-queue is not a service"):
        build(data_services=["postgres", "redis-queue"])
    # Before nginx's fragment (the edge comes last): no edge service yet, nothing global.
    assert all(s["deploy"].get("mode") != "global" for s in build(edge_service="web")["services"].values())
    # Before the app's fragment (the data tier deployed first): no app service.
    project = copy.deepcopy(PROJECT)
    del project["services"]["app1"], project["services"]["app2"]
    assert "app" not in build(project, app_instances=[])["services"]


@pytest.mark.parametrize(("value", "seconds"), [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), (3, 3.0), ("1h", 3600.0)])
def test_durations(value, seconds):
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["", "ten", "10x", True])
def test_bad_durations(value):
    with pytest.raises(SwarmStackError, match="must be a duration"):
        duration_seconds(value, "interval")


def test_the_monitor_window_with_docker_defaults():
    # interval and timeout default to 30 s, retries to 3, start period to 0.
    assert update_monitor({"test": ["CMD", "true"]}) == "185s"
    with pytest.raises(SwarmStackError, match="needs a health check"):
        update_monitor({"test": ["NONE"]})
