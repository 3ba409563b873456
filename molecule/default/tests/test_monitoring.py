"""Monitoring (issue 12) on the converged server: every target is up, the
rules are loaded and nothing fires on a healthy server, the exporters read
what the stack really is (limits, rotation, Redis's maxmemory), every
dashboard query returns data from the live Prometheus (Grafana itself has no
package here), the app's /metrics is not public, a retention that cannot fit
the disk is refused before anything changes, and stopping connect_app1 for
longer than its alert's `for:` delivers the alert to a Slack-style webhook and
to an SMTP server on the machine, then its resolution once the instance is
back."""

from __future__ import annotations

import json
import re
import sys
import time

from conftest import APPS, CONTAINER, CONTRACT, DATABASE, PORT, PROJECT, edge, harness_vars, role_defaults, seconds_of, wait_healthy

sys.path.insert(0, str(PROJECT / "tests" / "unit"))
from dashboards import dashboard_queries  # noqa: E402

# A failed test may leave app1 stopped: the app's converge starts it again.
RESTORE = ("--tags", "app,monitoring")

EXPORTER = "connect_connect_exporter"  # has python3 and sits on the backend network
PROMETHEUS = f"http://prometheus:{PORT['prometheus']}"
ALERTMANAGER = f"http://alertmanager:{PORT['alertmanager']}"


def api(host, url: str):
    """GET a JSON API on the backend network (from the exporter's container)."""
    code = f"import urllib.request,sys;sys.stdout.write(urllib.request.urlopen({url!r}, timeout=20).read().decode())"
    out = host.run(f"docker exec {EXPORTER} python3 -c {json.dumps(code)}")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def query(host, expr: str) -> list:
    from urllib.parse import quote

    answer = api(host, f"{PROMETHEUS}/api/v1/query?query={quote(expr)}")
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def value_of(host, expr: str) -> dict:
    """A query's series, each as its labels (JSON) -> value."""
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in query(host, expr)}


def wait_for(what: str, probe, timeout: float, every: float = 3.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


def test_every_target_is_up(host):
    def targets():
        active = api(host, f"{PROMETHEUS}/api/v1/targets?state=active")["data"]["activeTargets"]
        return active if active and all(t["health"] == "up" for t in active) else None

    try:
        active = wait_for("every target up", targets, 90)
    except AssertionError:
        down = [
            (t["labels"].get("job"), t["labels"].get("instance"), t.get("lastError"))
            for t in api(host, f"{PROMETHEUS}/api/v1/targets?state=active")["data"]["activeTargets"]
            if t["health"] != "up"
        ]
        raise AssertionError(f"targets down: {down}") from None
    seen = {(t["labels"]["job"], t["labels"]["instance"]) for t in active}
    expected = {
        ("prometheus", "prometheus"),
        ("alertmanager", "alertmanager"),
        ("node", "node"),
        ("postgres", "postgres"),
        ("pgbouncer", "pgbouncer"),
        ("redis", "redis-cache"),
        ("redis", "redis-queue"),
        ("connect", "connect"),
        ("blackbox", "edge"),
    }
    expected |= {("app", f"app{i}") for i in (1, 2)} | {("blackbox", f"app{i}") for i in (1, 2)}
    assert seen == expected, seen ^ expected


def test_the_rules_are_loaded_and_nothing_critical_fires_on_a_healthy_server(host):
    groups = api(host, f"{PROMETHEUS}/api/v1/rules?type=alert")["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"AppInstanceDown", "ContainerDown", "WalArchiveBehind", "RedisQueueMemoryHigh", "HostCpuHigh"} <= names, names
    bad = [rule["name"] for group in groups for rule in group["rules"] if rule.get("health") not in ("ok", "unknown")]
    assert not bad, bad
    # Nothing critical; a warning may come from the test machine itself (its CPU is shared with the tests).
    firing = query(host, 'ALERTS{alertstate="firing", severity="critical"}')
    assert firing == [], [a["metric"] for a in firing]


def test_the_exporters_read_the_stack_as_it_is(host):
    limits = harness_vars()["compose_stack_resources"]
    app1 = CONTAINER["app"] + "1"
    memory = value_of(host, f'connect_container_memory_limit_bytes{{name="{app1}"}}')
    assert list(memory.values()) == [512 * 1024 * 1024], memory
    cpus = value_of(host, f'connect_container_cpu_limit_cores{{name="{app1}"}}')
    assert list(cpus.values()) == [float(limits["app"]["cpus"])], cpus
    running = value_of(host, "connect_container_running")
    assert len(running) >= len(APPS) + 6 and all(v == 1 for v in running.values()), running
    assert sorted(value_of(host, "connect_app_in_rotation").values()) == [1.0, 1.0]
    assert list(value_of(host, 'redis_memory_max_bytes{instance="redis-queue"}').values())[0] > 0
    assert list(value_of(host, "pg_settings_max_connections").values())[0] > 0
    assert value_of(host, "connect_archiver_pending_segments"), "the archiver query returns nothing"
    assert list(value_of(host, 'probe_ssl_earliest_cert_expiry{probe="edge"}').values())[0] > time.time()
    # The exporters log in without a password on their command lines.
    for name in ("connect_pgbouncer_exporter", "connect_postgres_exporter", "connect_redis_exporter_cache"):
        args = host.check_output(f"docker inspect -f '{{{{json .Args}}}}' {name}")
        assert "PASSWORD" not in args.upper() and ":" + "@" not in args, args


def test_the_exporters_log_in_with_users_that_only_read_statistics(host):
    """PostgreSQL's exporter is postgres_monitor_user (pg_monitor, not a superuser, no table of the app's); Redis's
    exporters are redis_monitor_user, refused nothing while scraping (ACL LOG) and refused any key."""
    monitor = role_defaults("postgres")["postgres_monitor_user"]
    psql = f"docker exec -u postgres {CONTAINER['postgres']} psql -X -At -d {DATABASE} -c"
    address = host.check_output("docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' connect_postgres_exporter")
    users = host.check_output(
        f"{psql} \"SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity WHERE host(client_addr) IN ("
        + ",".join(f"'{a}'" for a in address.split())
        + ')"'
    )
    assert users == monitor, f"the postgres exporter's sessions log in as {users!r}"
    rights = host.check_output(
        f"{psql} \"SELECT r.rolsuper, pg_has_role('{monitor}', 'pg_monitor', 'member'), "
        f"coalesce(bool_or(has_table_privilege('{monitor}', c.oid, 'SELECT')), false) FROM pg_roles r, pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' AND c.relkind = 'r' "
        f"WHERE r.rolname = '{monitor}' GROUP BY r.rolsuper\""
    )
    assert rights == "f|t|f", f"{monitor}: superuser, pg_monitor, reads an app table = {rights}"
    redis = role_defaults("redis")
    secrets = f"{CONTRACT['compose_stack_root']}/secrets"
    for service in ("redis-cache", "redis-queue"):

        def cli(user: str, secret: str, command: str, service: str = service) -> list[str]:
            login = f'AUTH {user} "$(cat {secrets}/{secret})"'
            run = (
                f"printf '%s\\n%s\\n' {json.dumps(login)} '{command}' | "
                f"docker exec -i {CONTAINER[service]} redis-cli -p {PORT[service]} --no-auth-warning"
            )
            # runc's exec can lose its init on this 2-core harness under load ("read init-p: connection
            # reset by peer", exit 126): an exec that never reached Redis is tried again, once.
            result = host.run(run)
            if result.rc == 126 and "OCI runtime exec failed" in result.stdout + result.stderr:
                time.sleep(2)
                result = host.run(run)
            assert result.rc == 0, f"{service}: {result.stdout}{result.stderr}"
            lines = result.stdout.splitlines()
            assert lines[:1] == ["OK"], f"{service}: {user} cannot log in: {lines[:1]}"
            return lines[1:]

        # ACL LOG's entries, flat: each starts with "count"; a key's value follows it.
        flat = cli(redis["redis_admin_user"], "redis_admin_password", "ACL LOG 128")
        entries = [dict(zip(e[::2], e[1::2], strict=False)) for e in _split_at(flat, "count")]
        refused = [e for e in entries if e.get("username") == redis["redis_monitor_user"] and e.get("reason") != "auth"]
        assert refused == [], f"{service} refused the exporter: {refused}"
        assert cli(redis["redis_monitor_user"], "redis_monitor_password", "GET connect:probe")[0].startswith("NOPERM"), service
        # The probe's own refusal leaves the log as it found it for a rerun.
        cli(redis["redis_admin_user"], "redis_admin_password", "ACL LOG RESET")
    assert list(value_of(host, "redis_up").values()) == [1.0, 1.0]


def _split_at(lines: list[str], marker: str) -> list[list[str]]:
    parts: list[list[str]] = []
    for line in lines:
        if line == marker:
            parts.append([])
        if parts:
            parts[-1].append(line)
    return parts


def query_all(host, exprs: list[str]) -> list:
    """Every query in one exec (each exec costs about 2 s): each one's status and result."""
    code = (
        "import json,sys,urllib.parse,urllib.request\n"
        f"base={PROMETHEUS!r}\n"
        "out=[]\n"
        "for e in json.load(sys.stdin):\n"
        "    u=base+'/api/v1/query?query='+urllib.parse.quote(e)\n"
        "    try: a=json.load(urllib.request.urlopen(u, timeout=20))\n"
        "    except Exception as x: a={'status':'error','error':str(x)}\n"
        "    out.append(a)\n"
        "sys.stdout.write(json.dumps(out))\n"
    )
    from subprocess import run as run_local

    from conftest import SERVER

    proc = run_local(
        ["docker", "exec", "-i", SERVER, "docker", "exec", "-i", EXPORTER, "python3", "-c", code],
        input=json.dumps(exprs),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_dashboard_query_returns_data(host):
    # Some traffic, so the request panels have samples.
    for _request in range(20):
        edge("/api/health")
    time.sleep(25)  # two scrapes of the connect-exporter
    queries = dashboard_queries()
    answers = query_all(host, [expr.replace("$__rate_interval", "1m").replace("$__range", "1h") for _dashboard, _panel, expr in queries])
    empty = [
        f"{d} / {p}: {e} ({a.get('error', 'no data')})"
        for (d, p, e), a in zip(queries, answers, strict=True)
        if a.get("status") != "success" or not a["data"]["result"]
    ]
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_the_apps_metrics_are_not_public_but_prometheus_reads_them(host):
    assert edge("/metrics").status == 404
    names = {r["metric"]["__name__"] for r in query(host, '{job="app", __name__=~"connect_.+"}')}
    assert {
        "connect_user_registrations_total",
        "connect_funding_matches_generated_total",
        "connect_scraping_runs_total",
        "connect_subscription_conversions_total",
        "connect_active_sessions",
    } <= names, names


def test_the_files_with_passwords_are_root_only(host):
    root = "/opt/connect/config/monitoring"
    for path in (
        "postgres-exporter.env",
        "pgbouncer-exporter.env",
        "redis-exporter-cache.env",
        "redis-exporter-queue.env",
        "alertmanager/alertmanager.yml",
    ):
        f = host.file(f"{root}/{path}")
        assert f.mode == 0o600, (path, oct(f.mode))


def test_monitoring_playbook_prints_targets_and_alerts(playbook):
    run = playbook(playbook="monitoring.yml")
    assert run.rc == 0 and run.recap["changed"] == 0, run
    for target in ('instance="app1", job="app"', 'instance="postgres", job="postgres"', 'instance="edge", job="blackbox"'):
        assert f"1 {target}" in run.flat, target
    assert re.search(r'\balerts"?:', run.flat) and re.search(r'\btargets"?:', run.flat), run


def test_a_retention_that_cannot_fit_the_disk_is_refused_before_anything_changes(playbook):
    run = playbook("--tags", "monitoring", extra_vars={"monitoring_prometheus_retention_size": "900PB"})
    assert run.rc != 0 and run.recap["changed"] == 0, run
    assert "monitoring_prometheus_retention_size 900PB does not fit" in run.flat, run


# --- the alert, end to end ---------------------------------------------------------------


def _slack_says(post: dict, *words: str) -> bool:
    text = json.dumps(post)
    return all(word in text for word in words)


def test_the_dead_mans_switch_sends_heartbeats_at_its_interval_and_nothing_else(sinks):
    interval = seconds_of(harness_vars()["monitoring_heartbeat_interval"])
    started = len(sinks.heartbeats)
    wait_for("three heartbeats", lambda: len(sinks.heartbeats) >= started + 3, 6 * interval + 30, every=1)
    beats = sinks.heartbeats[started:]
    gaps = [round(b - a, 1) for a, b in zip(beats[:-1], beats[1:], strict=True)]
    print(f"heartbeats every {gaps} s (monitoring_heartbeat_interval {interval} s)")
    # One per interval; never a gap the receiver would take for a dead server (a duplicate is harmless).
    assert max(gaps) <= interval + 5, gaps
    # The Watchdog never reaches Slack or e-mail.
    assert not [p for p in sinks.posts if "Watchdog" in json.dumps(p)]
    assert not [m for m in sinks.mails if "Watchdog" in m.as_string()]


def test_a_stopped_instance_alerts_slack_and_email_then_resolves(host, sinks):
    app1 = CONTAINER["app"] + "1"
    host.check_output(f"docker stop {app1}")
    stopped = time.monotonic()
    try:
        wait_for(
            "the firing alert on the webhook",
            lambda: [p for p in sinks.posts if _slack_says(p, "AppInstanceDown", "app1") and "RESOLVED" not in json.dumps(p).upper()],
            240,
        )
        fired = time.monotonic() - stopped
        wait_for("the firing alert by e-mail", lambda: [m for m in sinks.mails if "AppInstanceDown" in m.as_string()], 60)
    finally:
        host.check_output(f"docker start {app1}")
    wait_healthy(host, app1)
    wait_for(
        "the resolution on the webhook",
        lambda: [p for p in sinks.posts if _slack_says(p, "AppInstanceDown") and "RESOLVED" in json.dumps(p).upper()],
        180,
    )
    wait_for(
        "the resolution by e-mail",
        lambda: [m for m in sinks.mails if "AppInstanceDown" in m.as_string() and "RESOLVED" in m.as_string().upper()],
        60,
    )
    alert_for = harness_vars()["monitoring_alert_for"]["instance_down"]
    print(f"AppInstanceDown (for: {alert_for}) reached the webhook {fired:.0f} s after the stop")
    seconds = seconds_of(alert_for)
    assert fired >= seconds, f"the alert arrived {fired:.0f} s after the stop, before its for: {alert_for}"
