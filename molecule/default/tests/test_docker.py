"""docker_engine, as the inner engine reports it."""

import json

import pytest

PROBE = "connect-harness/probe:1"


@pytest.fixture(scope="module")
def registry(host):
    gateway = host.check_output("ip -4 route show default").split()[2]
    return f"{gateway}:5000"


@pytest.fixture(scope="module")
def probe_image(host, registry):
    ref = f"{registry}/{PROBE}"
    host.check_output(f"docker pull -q {ref}")
    return ref


@pytest.fixture(scope="module")
def info(host):
    return json.loads(host.check_output("docker info --format '{{json .}}'"))


def test_engine_running_and_enabled(host):
    svc = host.service("docker")
    assert svc.is_running
    assert svc.is_enabled


def test_daemon_settings(info):
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is True
    assert int(info["ServerVersion"].split(".")[0]) >= 24


def test_daemon_json(host):
    conf = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert conf["log-opts"] == {"max-size": "50m", "max-file": "5"}
    assert conf["default-address-pools"] == [{"base": "172.30.0.0/16", "size": 24}]
    assert conf["no-new-privileges"] is True


def test_compose_v2(host):
    version = host.check_output("docker compose version --short").lstrip("v")
    assert int(version.split(".")[0]) >= 2


@pytest.mark.parametrize(("name", "internal"), [("frontend", False), ("backend", True), ("egress", False)])
def test_networks(host, name, internal):
    net = json.loads(host.check_output(f"docker network inspect {name}"))[0]
    assert net["Driver"] == "bridge"
    assert net["Internal"] is internal
    assert net["IPAM"]["Config"][0]["Subnet"].startswith("172.30.")


def test_container_limits_enforced(host, probe_image):
    # cgroup v1 here, v2 on Ubuntu 22.04: read whichever the kernel exposes.
    out = host.check_output(
        f"docker run --rm --cpus 0.5 --memory 64m {probe_image} sh -c "
        "'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || "
        "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)'"
    )
    memory, cpu = out.splitlines()
    assert int(memory) == 64 * 1024 * 1024
    quota, period = (int(x) for x in cpu.split())
    assert quota / period == 0.5


def _reaches(host, image, network, registry):
    address, port = registry.split(":")
    cmd = f"docker run --rm --network {network} {image} sh -c 'echo | busybox nc -w 3 {address} {port}'"
    return host.run(cmd).rc == 0


def test_frontend_reaches_out(host, probe_image, registry):
    # Hardening left Docker's forwarding and NAT intact.
    assert _reaches(host, probe_image, "frontend", registry)


def test_backend_has_no_way_out(host, probe_image, registry):
    assert not _reaches(host, probe_image, "backend", registry)


def test_port_guard_in_docker_user_chain(host):
    rules = host.check_output("iptables -S DOCKER-USER")
    assert "--ctorigdstport 80 -j RETURN" in rules
    assert "--ctorigdstport 443 -j RETURN" in rules
    assert "-i eth0 -j DROP" in rules
    assert host.service("connect-docker-port-guard").is_enabled


# --- CIS Docker Benchmark (issue 22): what docker-bench-security checks, asked of the engine itself ---
# The containers whose root filesystem must be read-only (5.12); the app and scraper
# write their own caches (docs/app-contract.md), so they are not listed.
READ_ONLY = ("nginx", "postgres", "pgbouncer", "redis-cache", "redis-queue", "prometheus", "alertmanager")


@pytest.fixture(scope="module")
def stack_containers(host):
    names = host.check_output("docker ps --format '{{.Names}}' --filter label=com.docker.compose.project=connect").split()
    assert len(names) >= 10, names
    return {c["Name"].lstrip("/"): c for c in json.loads(host.check_output(f"docker inspect {' '.join(names)}"))}


def test_every_stack_container_has_a_pids_limit_and_a_health_check(stack_containers):
    """CIS Docker 5.26 and 5.28."""
    no_pids = sorted(n for n, c in stack_containers.items() if not (c["HostConfig"].get("PidsLimit") or 0) > 0)
    no_health = sorted(n for n, c in stack_containers.items() if not (c["Config"].get("Healthcheck") or {}).get("Test"))
    assert (no_pids, no_health) == ([], [])
    unhealthy = sorted(n for n, c in stack_containers.items() if c["State"].get("Health", {}).get("Status") != "healthy")
    assert unhealthy == []


def test_root_filesystems_read_only_where_the_service_allows(stack_containers):
    """CIS Docker 5.12: each listed service writes only to its volumes and tmpfs."""
    from conftest import CONTAINER

    writable = sorted(key for key in READ_ONLY if not stack_containers[CONTAINER[key]]["HostConfig"]["ReadonlyRootfs"])
    assert writable == []


# What a container may add back after dropping every capability (5.3): nginx's
# master binds 80/443, makes its workers' temp directories and starts them as
# nginx. Every other container runs as its service's user with none.
CAPABILITIES_ADDED = {"nginx": {"CHOWN", "NET_BIND_SERVICE", "SETUID", "SETGID"}}


def test_every_container_drops_every_capability_it_does_not_need(stack_containers):
    """CIS Docker 5.3: ALL dropped everywhere; only the listed ones added back."""
    from conftest import CONTAINER

    allowed = {CONTAINER[key]: caps for key, caps in CAPABILITIES_ADDED.items()}
    keeps_defaults = sorted(n for n, c in stack_containers.items() if "ALL" not in (c["HostConfig"].get("CapDrop") or []))
    extra = {
        n: sorted(set(c["HostConfig"].get("CapAdd") or []) - allowed.get(n, set()))
        for n, c in stack_containers.items()
        if set(c["HostConfig"].get("CapAdd") or []) - allowed.get(n, set())
    }
    assert (keeps_defaults, extra) == ([], {})


def test_only_nginx_and_the_stack_exporter_start_as_root(stack_containers):
    """CIS Docker 4.1: nginx's master (it binds 80/443) and the stack exporter
    (root with no capability: it reads Docker's root-only state files) are the
    only ones; every other container runs as its service's user."""
    from conftest import CONTAINER

    as_root = sorted(n for n, c in stack_containers.items() if c["Config"]["User"].split(":")[0] in ("", "0", "root"))
    assert as_root == sorted([CONTAINER["nginx"], "connect_connect_exporter"])


def test_no_container_is_privileged_or_on_the_default_bridge(stack_containers):
    """CIS Docker 5.4 and 5.29."""
    privileged = sorted(n for n, c in stack_containers.items() if c["HostConfig"]["Privileged"])
    on_bridge = sorted(n for n, c in stack_containers.items() if "bridge" in c["NetworkSettings"]["Networks"])
    assert (privileged, on_bridge) == ([], [])


def test_daemon_icc_off_and_no_userland_proxy(host, info):
    """CIS Docker 2.2 and 2.15: no inter-container traffic on the default bridge, no docker-proxy processes."""
    conf = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert (conf["icc"], conf["userland-proxy"]) == (False, False)
    bridge = json.loads(host.check_output("docker network inspect bridge"))[0]
    assert bridge["Options"].get("com.docker.network.bridge.enable_icc") == "false"
    assert host.run("grep -xs docker-proxy /proc/[0-9]*/comm").rc == 1, "a docker-proxy process runs"


def test_default_bridge_isolates_containers(host, probe_image):
    """icc off: a container on the default bridge cannot reach another one there."""
    host.run("docker rm -f cis-icc-server")
    host.check_output(f"docker run -d --name cis-icc-server {probe_image} busybox httpd -f -p 8000")
    try:
        address = host.check_output("docker inspect -f '{{.NetworkSettings.IPAddress}}' cis-icc-server")
        reach = host.run(f"docker run --rm {probe_image} sh -c 'echo | busybox nc -w 3 {address} 8000'")
        assert reach.rc != 0, "two containers on the default bridge talk to each other"
    finally:
        host.run("docker rm -f cis-icc-server")
