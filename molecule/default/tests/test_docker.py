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
