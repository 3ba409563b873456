"""The stack's own Prometheus exporter (roles/monitoring/files/connect-exporter.py), imported by path
and run over fake trees: Docker's containers directory, cgroup v2 in both drivers' layouts, nginx's
access log (rotation, truncation, malformed lines), backup and maintenance status files, the app
upstream file as module_utils/_upstream.py writes it, and a /proc/1/net/dev. Its exposition text is
parsed back into samples; one test serves it over HTTP on an ephemeral port."""

import importlib.util
import json
import os
import re
import shutil
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ansible_collections.connect.platform.plugins.module_utils._upstream import render_upstream

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "monitoring" / "files" / "connect-exporter.py"
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2", "3", "5", "10", "+Inf"]


@pytest.fixture(scope="module")
def exporter():
    spec = importlib.util.spec_from_file_location("connect_exporter", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    written, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the role's files/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = written
    return module


# --- a small parser of the text exposition format -------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_exposition(text):
    """{"samples": {(name, ((label, value), ...)): float}, "types": {family: type}}; asserts that every
    sample's family has HELP and TYPE lines before it and that no series appears twice."""
    assert text.endswith("\n")
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _comment, _keyword, name, mtype = line.split()
            assert name in helps, f"TYPE before HELP for {name}"
            assert name not in types, f"{name} declared twice"
            types[name] = mtype
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels_text, value = match.groups()
        family = name
        if name not in types:
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert types.get(family) == "histogram", f"{name} has no TYPE line"
        labels, pos = [], 0
        while labels_text and pos < len(labels_text):
            label = _LABEL.match(labels_text, pos)
            assert label, f"bad labels in {line!r}"
            labels.append((label.group(1), _unescape(label.group(2))))
            pos = label.end()
        key = (name, tuple(sorted(labels)))
        assert key not in samples, f"duplicate series {key}"
        samples[key] = float(value.replace("Inf", "inf"))
    return {"samples": samples, "types": types}


def value(parsed, metric, /, **labels):
    return parsed["samples"][(metric, tuple(sorted(labels.items())))]


def series(parsed, name):
    """{labels dict as a sorted tuple: value} of one sample name."""
    return {labels: val for (sample, labels), val in parsed["samples"].items() if sample == name}


# --- fake trees --------------------------------------------------------------------------------------------

ID_APP1 = "a1" * 32
ID_PG = "b2" * 32
ID_REDIS = "c3" * 32
ID_NGINX = "d4" * 32
ID_WORKER = "e5" * 32


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def container(root, cid, name, running=True, health=None, nano_cpus=0, memory=0, log_path=None):
    state = {"Running": running, "StartedAt": "2026-01-01T00:00:00Z"}
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 0}
    config = {"ID": cid, "Name": "/" + name, "State": state}
    if log_path:
        config["LogPath"] = log_path
    write_json(root / cid / "config.v2.json", config)
    write_json(root / cid / "hostconfig.json", {"NanoCpus": nano_cpus, "Memory": memory, "CpuQuota": 0, "CpuPeriod": 0})


def cgroup(path, usage_usec, current, inactive_file, cpu_max="max 100000", memory_max="max"):
    path.mkdir(parents=True)
    (path / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec 1\nsystem_usec 2\n")
    (path / "memory.current").write_text(f"{current}\n")
    (path / "memory.stat").write_text(f"anon 10\nfile 20\nactive_file 5\ninactive_file {inactive_file}\n")
    (path / "cpu.max").write_text(cpu_max + "\n")
    (path / "memory.max").write_text(memory_max + "\n")


def log_line(status=200, rt="0.004", agent="curl/8.0", request="GET /api/health HTTP/1.1", user="-"):
    return (
        f'172.18.0.1 - {user} [01/Jan/2026:10:00:00 +0900] "{request}" {status} 17 "-" "{agent}" '
        f'rt={rt} ua="172.18.0.5:3001" us="{status}" urt="{rt}"\n'
    )


@pytest.fixture
def tree(tmp_path):
    docker, cg = tmp_path / "docker", tmp_path / "cgroup"
    container(docker, ID_APP1, "connect_app1", health="healthy", nano_cpus=1_500_000_000, memory=512 * 1024 * 1024)
    container(docker, ID_PG, "connect_postgres")  # no health check; limits only in its cgroup
    container(docker, ID_REDIS, "connect_redis_cache", health="unhealthy")
    container(docker, ID_NGINX, "connect_nginx", running=False, health="unhealthy", nano_cpus=1_000_000_000)
    container(docker, ID_WORKER, "connect_scraper", health="starting", nano_cpus=500_000_000)  # runs, no cgroup anywhere
    (docker / "not-a-container").mkdir()
    (docker / ("f6" * 32)).mkdir()  # half-created: no config.v2.json yet
    cgroup(cg / "system.slice" / f"docker-{ID_APP1}.scope", 2_500_000, 300_000_000, 100_000_000)
    cgroup(cg / "docker" / ID_PG, 1_000_000, 1000, 5000, cpu_max="200000 100000")  # inactive_file > current: 0, never negative
    cgroup(cg / "kubelet.slice" / "pods" / f"cri-containerd-{ID_REDIS}.scope", 7, 4096, 0, memory_max="1048576")
    (cg / "system.slice" / "containerd.service").mkdir(parents=True)

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_text("")

    backups = tmp_path / "backups"
    write_json(backups / "pg-full.json", {"time": "2026-01-01T02:00:00+00:00", "job": "pg-full", "result": "ok", "steps": []})
    write_json(
        backups / "pg-diff.json",
        {"time": "2026-01-02T02:00:00Z", "job": "pg-diff", "result": "failed", "last_success": "2026-01-01T02:30:00+09:00"},
    )
    write_json(backups / "files-uploads.json", {"time": "2026-01-02T03:00:00+00:00", "job": "files-uploads", "result": "failed"})
    (backups / ".pg-full.x1y2z3").write_text("{half")  # a job's temporary file, before its rename
    (backups / "README").write_text("not a status file")

    maintenance = tmp_path / "maintenance"
    write_json(maintenance / "vacuum.json", {"time": "2026-01-04T18:30:00+00:00", "job": "vacuum", "result": "ok", "seconds": 3.2})
    write_json(maintenance / "integrity.json", {"time": "2026-01-04T19:00:00+00:00", "job": "integrity", "result": "failed"})
    (tmp_path / "maintenance.log").write_text(
        json.dumps({"time": "2025-12-28T19:00:00+00:00", "job": "integrity", "result": "ok"})
        + "\n"
        + json.dumps({"time": "2026-01-04T19:00:00+00:00", "job": "integrity", "result": "failed"})
        + "\nnot json\n"
    )

    (tmp_path / "upstreams").mkdir()
    (tmp_path / "upstreams" / "connect_app.conf").write_text(render_upstream(["app1"], name="connect_app"))

    (tmp_path / "proc" / "1" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "net" / "dev").write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0\n"
        "  eth0: 9876543210 5000    0    0    0     0          0         0 1234567890 4000    0    0    0     0       0          0\n"
        "ens5:11 1 0 0 0 0 0 0 22 2 0 0 0 0 0 0\n"
        "docker0:  1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n"
        "br-0a1b2c3d: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n"
        "veth12ab34: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n"
    )

    config = {
        "containers": [
            {"name": "connect_app1", "service": "app1"},
            {"name": "connect_app2", "service": "app2"},
            {"name": "connect_postgres", "service": "postgres"},
            {"name": "connect_redis_cache", "service": "redis-cache"},
            {"name": "connect_nginx", "service": "nginx"},
            {"name": "connect_scraper", "service": "scraper"},
        ],
        "docker_root": str(docker),
        "cgroup_root": str(cg),
        "access_log": str(logs / "access.log"),
        "backup_status_dir": str(backups),
        "maintenance_status_dir": str(maintenance),
        "maintenance_log": str(tmp_path / "maintenance.log"),
        "upstream_file": str(tmp_path / "upstreams" / "connect_app.conf"),
        "app_instances": ["app1", "app2"],
        "proc_root": str(tmp_path / "proc"),
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return {"root": tmp_path, "config": config, "config_path": path, "log": logs / "access.log"}


def scrape(instance):
    return parse_exposition(instance.collect())


# --- containers ------------------------------------------------------------------------------------------


def test_containers_state_health_cpu_and_memory_in_both_cgroup_layouts(exporter, tree):
    parsed = scrape(exporter.Exporter(tree["config"]))
    labels = {"app1": "connect_app1", "app2": "connect_app2", "postgres": "connect_postgres"}
    labels.update({"redis-cache": "connect_redis_cache", "nginx": "connect_nginx", "scraper": "connect_scraper"})

    def get(metric, service):
        return value(parsed, metric, name=labels[service], service=service)

    running = {service: get("connect_container_running", service) for service in labels}
    assert running == {"app1": 1, "app2": 0, "postgres": 1, "redis-cache": 1, "nginx": 0, "scraper": 1}
    healthy = {service: get("connect_container_healthy", service) for service in labels}
    # "starting" is what Docker leaves on disk for a running container: not known unhealthy.
    assert healthy == {"app1": 1, "app2": 0, "postgres": 1, "redis-cache": 0, "nginx": 0, "scraper": 1}

    # systemd driver (system.slice/docker-<id>.scope): limits from hostconfig.json.
    assert get("connect_container_cpu_usage_seconds_total", "app1") == 2.5
    assert get("connect_container_memory_working_set_bytes", "app1") == 200_000_000
    assert get("connect_container_cpu_limit_cores", "app1") == 1.5
    assert get("connect_container_memory_limit_bytes", "app1") == 512 * 1024 * 1024
    # cgroupfs driver (docker/<id>): no cpus in hostconfig, cpu.max says 2 cores; memory.max "max": none.
    assert get("connect_container_cpu_usage_seconds_total", "postgres") == 1
    assert get("connect_container_memory_working_set_bytes", "postgres") == 0
    assert get("connect_container_cpu_limit_cores", "postgres") == 2
    assert get("connect_container_memory_limit_bytes", "postgres") == 0
    # Found by searching for its id elsewhere in the hierarchy; memory.max is its limit.
    assert get("connect_container_cpu_usage_seconds_total", "redis-cache") == 7e-6
    assert get("connect_container_memory_limit_bytes", "redis-cache") == 1048576
    assert get("connect_container_cpu_limit_cores", "redis-cache") == 0
    # Running but no cgroup found: its limits, no usage. Stopped or missing: no cpu/memory series at all.
    assert get("connect_container_cpu_limit_cores", "scraper") == 0.5
    for name in ("connect_container_cpu_usage_seconds_total", "connect_container_memory_working_set_bytes"):
        assert {dict(k)["service"] for k in series(parsed, name)} == {"app1", "postgres", "redis-cache"}
    for name in ("connect_container_cpu_limit_cores", "connect_container_memory_limit_bytes"):
        assert {dict(k)["service"] for k in series(parsed, name)} == {"app1", "postgres", "redis-cache", "scraper"}
    assert parsed["types"]["connect_container_cpu_usage_seconds_total"] == "counter"
    assert parsed["types"]["connect_container_running"] == "gauge"


def test_container_state_follows_docker_between_scrapes_and_cgroup_paths_are_cached(exporter, tree):
    docker, cg = Path(tree["config"]["docker_root"]), Path(tree["config"]["cgroup_root"])
    state = exporter.ContainerState()
    families = exporter.container_metrics(tree["config"], state, now=1000.0)
    assert state.cgroups[ID_REDIS].endswith(f"cri-containerd-{ID_REDIS}.scope")
    assert state.cgroups[ID_WORKER] == 1000.0  # searched, not found: not searched again for a minute
    assert exporter.find_cgroup(str(cg), ID_WORKER, state.cgroups, now=1030.0) is None
    worker = cg / "system.slice" / "misc" / f"{ID_WORKER}"
    worker.mkdir(parents=True)
    assert exporter.find_cgroup(str(cg), ID_WORKER, state.cgroups, now=1030.0) is None
    assert exporter.find_cgroup(str(cg), ID_WORKER, state.cgroups, now=1061.0) == str(worker)
    assert exporter.find_cgroup(str(cg), "short", state.cgroups) is None

    # app1 stops; app2 appears (a new id), unhealthy then healthy.
    container(docker, ID_APP1, "connect_app1", running=False, health="unhealthy", nano_cpus=1_500_000_000)
    os.utime(docker / ID_APP1 / "config.v2.json", ns=(1, 1))  # a different mtime even on a coarse clock
    container(docker, "f7" * 32, "connect_app2", health="healthy")
    parsed = parse_exposition(exporter.render(exporter.container_metrics(tree["config"], state)))
    assert value(parsed, "connect_container_running", name="connect_app1", service="app1") == 0
    assert value(parsed, "connect_container_running", name="connect_app2", service="app2") == 1
    assert value(parsed, "connect_container_healthy", name="connect_app2", service="app2") == 1
    assert ("connect_container_cpu_limit_cores", (("name", "connect_app1"), ("service", "app1"))) not in parsed["samples"]
    assert len(families) == 6


# --- nginx's access log ------------------------------------------------------------------------------------


def test_parse_log_line(exporter):
    assert exporter.parse_log_line(log_line(200, "0.004")) == (200, 0.004)
    assert exporter.parse_log_line(log_line(502, "3.001", user="grafana admin")) == (502, 3.001)
    # A client cannot fake the fields after its (escaped) User-Agent.
    assert exporter.parse_log_line(log_line(404, "0.010", agent='x\\x22 rt=99 \\" 500')) == (404, 0.01)
    assert exporter.parse_log_line(log_line(101, "12")) == (101, 12.0)
    for bad in ("", "garbage", log_line(200, "-"), log_line(200, "abc"), log_line(600, "0.1"), log_line(200).replace(" rt=", " xx=")):
        assert exporter.parse_log_line(bad) is None, bad


def test_access_log_counts_classes_and_durations_and_tails_incrementally(exporter, tree):
    instance = exporter.Exporter(tree["config"])
    lines = [log_line(101, "0.001"), log_line(200, "0.004"), log_line(204, "0.005"), log_line(301, "0.3")]
    lines += [log_line(404, "1.000"), log_line(499, "2.5"), log_line(503, "12.0"), "this is not nginx\n", "\n"]
    tree["log"].write_text("".join(lines))
    parsed = scrape(instance)
    classes = {dict(k)["status_class"]: v for k, v in series(parsed, "connect_http_requests_total").items()}
    assert classes == {"1xx": 1, "2xx": 2, "3xx": 1, "4xx": 2, "5xx": 1}
    buckets = {dict(k)["le"]: v for k, v in series(parsed, "connect_http_request_duration_seconds_bucket").items()}
    assert list(buckets) == BUCKETS
    assert [buckets[le] for le in BUCKETS] == [3, 3, 3, 3, 3, 3, 4, 5, 5, 6, 6, 6, 7]  # le is inclusive: 0.005 is in 0.005
    assert value(parsed, "connect_http_request_duration_seconds_count") == 7
    assert value(parsed, "connect_http_request_duration_seconds_sum") == pytest.approx(15.81)
    assert value(parsed, "connect_exporter_log_lines_skipped_total") == 1
    assert parsed["types"]["connect_http_request_duration_seconds"] == "histogram"

    # Only what was appended since is counted; a line nginx has half written waits for its end.
    with tree["log"].open("a") as handle:
        handle.write(log_line(200, "0.02") + log_line(500, "0.5")[:40])
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="2xx") == 3
    assert value(parsed, "connect_http_requests_total", status_class="5xx") == 1
    with tree["log"].open("a") as handle:
        handle.write(log_line(500, "0.5")[40:])
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="5xx") == 2
    assert value(parsed, "connect_exporter_log_lines_skipped_total") == 1
    assert value(parsed, "connect_http_request_duration_seconds_count") == 9


def test_access_log_rotation_by_rename_counts_the_old_files_tail_and_the_new_file(exporter, tree):
    instance = exporter.Exporter(tree["config"])
    tree["log"].write_text(log_line(200) * 3)
    assert value(scrape(instance), "connect_http_requests_total", status_class="2xx") == 3
    with tree["log"].open("a") as handle:
        handle.write(log_line(404) * 2)  # written after the last scrape, before the rotation
    tree["log"].rename(tree["log"].with_name("access.log.1"))
    tree["log"].write_text(log_line(500) + log_line(200))  # nginx reopened (USR1): a new file
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="2xx") == 4
    assert value(parsed, "connect_http_requests_total", status_class="4xx") == 2
    assert value(parsed, "connect_http_requests_total", status_class="5xx") == 1
    # The log is gone for a while (counters stay), then back.
    tree["log"].unlink()
    assert value(scrape(instance), "connect_http_request_duration_seconds_count") == 7
    tree["log"].write_text(log_line(302))
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="3xx") == 1
    assert value(parsed, "connect_exporter_scrape_errors_total", collector="access_log") == 0


def test_access_log_truncated_in_place_is_read_again_from_its_start(exporter, tree):
    instance = exporter.Exporter(tree["config"])
    tree["log"].write_text(log_line(200) * 5)
    assert value(scrape(instance), "connect_http_requests_total", status_class="2xx") == 5
    with tree["log"].open("r+") as handle:  # logrotate's copytruncate: same inode, size 0, then new lines
        handle.truncate(0)
    with tree["log"].open("a") as handle:
        handle.write(log_line(503, "0.05"))
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="2xx") == 5
    assert value(parsed, "connect_http_requests_total", status_class="5xx") == 1
    assert value(parsed, "connect_exporter_log_lines_skipped_total") == 0


def test_a_large_log_at_start_is_read_from_its_end_a_small_one_whole(exporter, tree):
    tree["log"].write_text(log_line(200) * 20 + log_line(404)[:30])  # ends mid-line
    big = exporter.Exporter(dict(tree["config"], access_log_replay_max_bytes=1000))
    small = exporter.Exporter(tree["config"])
    assert value(scrape(big), "connect_http_request_duration_seconds_count") == 0
    assert value(scrape(small), "connect_http_requests_total", status_class="2xx") == 20
    with tree["log"].open("a") as handle:
        handle.write(log_line(404)[30:] + log_line(500))
    parsed = scrape(big)
    # The half line it started in is not counted (nor counted as malformed); what follows is.
    assert value(parsed, "connect_http_requests_total", status_class="4xx") == 0
    assert value(parsed, "connect_http_requests_total", status_class="5xx") == 1
    assert value(parsed, "connect_exporter_log_lines_skipped_total") == 0
    parsed = scrape(small)
    assert value(parsed, "connect_http_requests_total", status_class="4xx") == 1
    assert value(parsed, "connect_http_request_duration_seconds_count") == 22


def docker_entry(text, stream="stdout"):
    return json.dumps({"log": text, "stream": stream, "time": "2026-01-01T01:00:00.123456789Z"}) + "\n"


def test_access_log_as_docker_json_log_of_the_nginx_container(exporter, tree):
    docker = Path(tree["config"]["docker_root"])
    config = dict(tree["config"], access_log_container="connect_nginx")
    del config["access_log"]
    log = docker / ID_NGINX / f"{ID_NGINX}-json.log"
    long_line = log_line(200, "0.02", agent="x" * 20000)  # Docker splits it at 16 KiB
    error = "2026/01/01 01:00:00 [error] 29#29: *1 upstream timed out\n"
    log.write_text(
        docker_entry(log_line(200))
        + docker_entry(error, "stderr")
        + docker_entry(long_line[:16384])
        + docker_entry(long_line[16384:])
        + "{not json\n"
        + docker_entry(log_line(503, "4"))
    )
    instance = exporter.Exporter(config)
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="2xx") == 2
    assert value(parsed, "connect_http_requests_total", status_class="5xx") == 1
    assert value(parsed, "connect_exporter_log_lines_skipped_total") == 1  # nginx's error log (stderr) is no access log line
    assert value(parsed, "connect_http_request_duration_seconds_sum") == pytest.approx(4.024)

    # Docker rotates its log (max-size): the old file's tail and the new file both count.
    with log.open("a") as handle:
        handle.write(docker_entry(log_line(404)))
    log.rename(log.with_name(log.name + ".1"))
    log.write_text(docker_entry(log_line(301)))
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="4xx") == 1
    assert value(parsed, "connect_http_requests_total", status_class="3xx") == 1

    # nginx recreated: a new container (id), its log read from its start.
    shutil.rmtree(docker / ID_NGINX)
    new_id = "a9" * 32
    container(docker, new_id, "connect_nginx", health="healthy", log_path=f"/var/lib/docker/containers/{new_id}/{new_id}-json.log")
    (docker / new_id / f"{new_id}-json.log").write_text(docker_entry(log_line(204)) + docker_entry(log_line(200)))
    parsed = scrape(instance)
    assert value(parsed, "connect_http_requests_total", status_class="2xx") == 4
    # No nginx container at all: the counters stay, nothing fails.
    shutil.rmtree(docker / new_id)
    parsed = scrape(instance)
    assert value(parsed, "connect_http_request_duration_seconds_count") == 7
    assert value(parsed, "connect_exporter_scrape_errors_total", collector="access_log") == 0


# --- backups, maintenance ---------------------------------------------------------------------------------


def test_backup_status_files(exporter, tree):
    parsed = scrape(exporter.Exporter(tree["config"]))
    runs = {dict(k)["job"]: v for k, v in series(parsed, "connect_backup_last_run_timestamp_seconds").items()}
    assert runs == {"pg-full": 1767232800, "pg-diff": 1767319200, "files-uploads": 1767322800}
    ok = {dict(k)["job"]: v for k, v in series(parsed, "connect_backup_last_result_ok").items()}
    assert ok == {"pg-full": 1, "pg-diff": 0, "files-uploads": 0}
    success = {dict(k)["job"]: v for k, v in series(parsed, "connect_backup_last_success_timestamp_seconds").items()}
    # pg-diff: its last_success (+09:00); files-uploads: failed, none known: no series.
    assert success == {"pg-full": 1767232800, "pg-diff": 1767202200}


def test_a_success_seen_once_is_remembered_when_the_next_run_fails(exporter, tree):
    instance = exporter.Exporter(tree["config"])
    backups = Path(tree["config"]["backup_status_dir"])
    scrape(instance)
    write_json(backups / "pg-full.json", {"time": "2026-01-08T02:00:00+00:00", "job": "pg-full", "result": "failed"})
    parsed = scrape(instance)
    assert value(parsed, "connect_backup_last_result_ok", job="pg-full") == 0
    assert value(parsed, "connect_backup_last_run_timestamp_seconds", job="pg-full") == 1767837600
    assert value(parsed, "connect_backup_last_success_timestamp_seconds", job="pg-full") == 1767232800


def test_maintenance_status_as_connect_maintenance_writes_it_with_its_log_for_the_last_success(exporter, tree):
    parsed = scrape(exporter.Exporter(tree["config"]))
    success = {dict(k)["job"]: v for k, v in series(parsed, "connect_maintenance_last_success_timestamp_seconds").items()}
    assert success == {"vacuum": 1767551400, "integrity": 1766948400}  # integrity: its newest "ok" in maintenance.log
    assert value(parsed, "connect_maintenance_last_result_ok", job="integrity") == 0
    assert value(parsed, "connect_maintenance_last_run_timestamp_seconds", job="vacuum") == 1767551400
    without_log = dict(tree["config"], maintenance_log="")
    parsed = scrape(exporter.Exporter(without_log))
    assert set(series(parsed, "connect_maintenance_last_success_timestamp_seconds")) == {(("job", "vacuum"),)}


def test_status_time_parsing(exporter):
    assert exporter.parse_time("2026-01-01T00:00:00Z") == 1767225600
    assert exporter.parse_time("2026-01-01T09:00:00+09:00") == 1767225600
    assert exporter.parse_time("2026-01-01T00:00:00") == 1767225600
    for bad in (None, "", "yesterday", 5):
        with pytest.raises(ValueError):
            exporter.parse_time(bad)


# --- upstream, network --------------------------------------------------------------------------------------


def test_upstream_file_one_of_two_instances_in_rotation(exporter, tree):
    parsed = scrape(exporter.Exporter(tree["config"]))
    assert value(parsed, "connect_app_in_rotation", instance="app1") == 1
    assert value(parsed, "connect_app_in_rotation", instance="app2") == 0
    Path(tree["config"]["upstream_file"]).write_text(render_upstream(["app2", "app1"], name="connect_app"))
    parsed = scrape(exporter.Exporter(tree["config"]))
    assert series(parsed, "connect_app_in_rotation") == {(("instance", "app1"),): 1, (("instance", "app2"),): 1}


def test_parse_upstream_markers_comments_and_blocks(exporter):
    text = (
        "# server app9:3001;\n"
        "upstream connect_app {\n"
        "    server app1:3001 max_fails=1 fail_timeout=5s;\n"
        "    server app2:3001 down;   # out for a release\n"
        "    server app3 backup; server 10.0.0.7:3001;\n"
        "    server [::1]:3001 weight=2;\n"
        "    keepalive 32;\n"
        "}\n"
        "upstream other { server app4:80; }\n"
    )
    servers = exporter.parse_upstream(text, "connect_app")
    assert [(s["host"], s["down"], s["backup"]) for s in servers] == [
        ("app1", False, False),
        ("app2", True, False),
        ("app3", False, True),
        ("10.0.0.7", False, False),
        ("::1", False, False),
    ]
    assert exporter.in_rotation(servers) == {"app1", "10.0.0.7", "::1"}
    assert [s["host"] for s in exporter.parse_upstream(text)][-1] == "app4"
    assert exporter.parse_upstream("") == []


def test_host_network_counters_without_container_devices(exporter, tree):
    parsed = scrape(exporter.Exporter(tree["config"]))
    receive = {dict(k)["device"]: v for k, v in series(parsed, "connect_host_network_receive_bytes_total").items()}
    transmit = {dict(k)["device"]: v for k, v in series(parsed, "connect_host_network_transmit_bytes_total").items()}
    assert receive == {"eth0": 9876543210, "ens5": 11}
    assert transmit == {"eth0": 1234567890, "ens5": 22}
    assert parsed["types"]["connect_host_network_receive_bytes_total"] == "counter"


# --- the exporter as a whole --------------------------------------------------------------------------------


def test_a_failing_collector_is_counted_and_breaks_no_other(exporter, tree):
    os.unlink(tree["config"]["upstream_file"])
    (Path(tree["config"]["proc_root"]) / "1" / "net" / "dev").write_text("")
    instance = exporter.Exporter(tree["config"])
    scrape(instance)
    parsed = scrape(instance)
    errors = {dict(k)["collector"]: v for k, v in series(parsed, "connect_exporter_scrape_errors_total").items()}
    assert errors == {"containers": 0, "access_log": 0, "backup": 0, "maintenance": 0, "upstream": 2, "network": 0}
    assert not series(parsed, "connect_app_in_rotation")
    assert series(parsed, "connect_container_running") and series(parsed, "connect_backup_last_result_ok")
    # docker_root unreadable: the containers collector fails, the rest still answer.
    broken = dict(tree["config"], docker_root=str(tree["root"] / "nowhere"))
    parsed = scrape(exporter.Exporter(broken))
    assert value(parsed, "connect_exporter_scrape_errors_total", collector="containers") == 1
    assert series(parsed, "connect_http_requests_total")


def test_every_family_of_the_catalogue_has_help_and_type(exporter, tree):
    text = exporter.Exporter(tree["config"]).collect()
    parsed = parse_exposition(text)
    catalogue = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
    section = catalogue.read_text().split("### connect-exporter", 1)[1].split("###", 1)[0]
    names = set(re.findall(r"`(connect_[a-z_]+)`", section))
    assert names and names <= set(parsed["types"]), names - set(parsed["types"])
    assert {"connect_exporter_scrape_errors_total", "connect_exporter_log_lines_skipped_total"} <= set(parsed["types"])


def test_label_values_and_help_are_escaped(exporter):
    family = exporter.Family("connect_test", "gauge", "a \\ help\nline").add(1.5, {"name": 'a"b\\c\nd'})
    text = exporter.render([family])
    assert text == '# HELP connect_test a \\\\ help\\nline\n# TYPE connect_test gauge\nconnect_test{name="a\\"b\\\\c\\nd"} 1.5\n'
    assert value(parse_exposition(text), "connect_test", name='a"b\\c\nd') == 1.5
    assert [exporter.format_value(v) for v in (3, 2.0, 0.25, float("inf"), True, 1e20)] == ["3", "2", "0.25", "+Inf", "1", "1e+20"]


def test_config_is_checked(exporter, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"containers": [{"service": "app1"}]}))
    with pytest.raises(ValueError):
        exporter.load_config(str(path))
    path.write_text("[]")
    with pytest.raises(ValueError):
        exporter.load_config(str(path))
    assert exporter.main(["--config", str(tmp_path / "missing.json")]) == 2


def test_http_server_serves_metrics_and_health(exporter, tree):
    config = exporter.load_config(str(tree["config_path"]))
    tree["log"].write_text(log_line(200) + log_line(500))
    server = exporter.make_server(exporter.Exporter(config), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            parsed = parse_exposition(answer.read().decode())
        assert value(parsed, "connect_http_requests_total", status_class="5xx") == 1
        assert value(parsed, "connect_container_running", name="connect_app1", service="app1") == 1
        with urllib.request.urlopen(base + "/-/healthy", timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b"OK\n"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/nothing", timeout=5)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_cgroup_v1_hierarchies_give_cpu_and_memory(exporter, tmp_path):
    cid = "f" * 64
    cpu = tmp_path / "cpuacct" / "docker" / cid
    memory = tmp_path / "memory" / "docker" / cid
    cpu.mkdir(parents=True)
    memory.mkdir(parents=True)
    (cpu / "cpuacct.usage").write_text("2500000000\n")
    (memory / "memory.usage_in_bytes").write_text("1048576\n")
    (memory / "memory.stat").write_text("cache 10\ntotal_inactive_file 48576\n")
    figures = exporter.read_cgroup_v1(str(tmp_path), cid)
    assert figures["cpu_seconds"] == 2.5
    assert figures["working_set_bytes"] == 1_000_000
