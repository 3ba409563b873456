"""Part `release`, the last (conftest.PARTS): releases under load on the
scenario's server (still on the first release, v1): deploy.yml and rollback.yml while
benchmarks/release_under_load.py keeps an open-loop load of GET, POST and
slow (5 s) requests on nginx's published port. The tests run in file order,
each from the state the previous one left."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import uuid

from conftest import (
    APPS,
    CONTAINER,
    CONTRACT,
    DATABASE,
    EDGE_HTTPS,
    PORT,
    PROJECT,
    SERVER,
    SERVICES,
    edge,
    inventory_args,
    on_host,
    role_defaults,
    role_vars,
    secret,
    started_at,
)

REPOSITORY = CONTRACT["compose_stack_app_image_repository"]
UPLOADS = CONTRACT["compose_stack_volumes"]["uploads"].replace("{{ compose_stack_root }}", CONTRACT["compose_stack_root"])
IMAGE = "{{ connect_harness_registry }}/connect-harness/testapp:%s"
MAINTENANCE_STATUS = on_host(role_defaults("operations")["operations_maintenance_status_dir"])


def release(
    *extra: str, playbook: str = "deploy.yml", expect_failure: bool = False, mix: str = "get=50,post=25,slow=10,health=15", output: str = ""
) -> dict:
    cmd = [
        sys.executable, str(PROJECT / "benchmarks" / "release_under_load.py"),
        "--server", SERVER, *inventory_args("--inventory"), "--url", EDGE_HTTPS,
        "--playbook", playbook, "--rate", "60", "--mix", mix,
    ]  # fmt: skip
    for ev in extra:
        cmd += ["-e", ev]
    if expect_failure:
        cmd.append("--expect-failure")
    if output:
        cmd += ["--playbook-output", output]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT, timeout=1200, check=False)
    print(proc.stderr[-6000:])
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, (proc.returncode, report.get("deploy_log"), proc.stderr[-3000:])
    return report


def db_checksum(host) -> str:
    # Every row and the schema; pg_dump >= 15.14 adds \\restrict lines with a random key.
    dump = f"docker exec -u postgres {CONTAINER['postgres']} pg_dump {DATABASE}"
    return host.check_output(dump + " | grep -Ev '^(--|.(un)?restrict )' | sha256sum | cut -c1-64")


def current_image(host) -> str:
    return host.check_output(f"docker image inspect -f '{{{{.Id}}}}' {REPOSITORY}:current")


def assert_no_failed_request(report: dict) -> None:
    load = report["load"]
    # At least 50 requests/s for the whole run, every one answered 2xx.
    assert load["rps_achieved"] >= 50, load
    assert load["failed"] == 0, load["errors_sample"]
    assert load["outcomes"]["ok"] == load["requests"], load["outcomes"]


UPLOAD = f"release-probe-{uuid.uuid4().hex[:12]}.json"
UPLOAD_BODY = {"uploaded_before": "the first release", "nonce": uuid.uuid4().hex}


def test_v1_serves_before_the_first_release(host):
    assert edge("/api/health").json()["version"] == "v1"
    # A user's upload, through nginx, before the release (issue 11: uploads on the host).
    stored = edge(f"/api/uploads/{UPLOAD}", "PUT", UPLOAD_BODY)
    assert stored.status == 201, stored
    assert host.file(f"{UPLOADS}/{UPLOAD}").exists


def test_deploy_v1_to_v2_under_load_fails_no_request(host):
    report = release("release_image=" + IMAGE % "v2")
    assert report["playbook_rc"] == 0, report["playbook_tail"]
    assert_no_failed_request(report)
    # Every answer to a request started after the deploy reports v2.
    assert set(report["versions_after_playbook"]) == {"v2"}, report["versions_after_playbook"]
    assert set(report["load"]["versions"]) == {"v1", "v2"}
    entry = report["deploy_log"]
    assert entry["result"] == "succeeded" and entry["version"] == "v2" and entry["action"] == "deploy"
    assert [i["service"] for i in entry["instances"] if i["action"] == "recreated"] == ["app1", "app2"]
    for inst in entry["instances"]:
        assert inst["boot_to_healthy_s"] > 0 and inst["drain_s"] >= 0 and inst["version"] == "v2", inst
    tags = host.check_output(f"docker image ls {REPOSITORY} --format '{{{{.Tag}}}}'").split()
    assert "previous" in tags and "current" in tags and any(t[:8].isdigit() for t in tags), tags
    dumps = host.check_output("ls /opt/connect/backups/postgres").split()
    assert any(d.startswith("pre-deploy-") for d in dumps), dumps
    assert host.file("/opt/connect/backups/postgres/" + next(d for d in dumps if d.startswith("pre-deploy-"))).mode == 0o600


def test_an_upload_from_before_the_release_is_served_by_every_instance_after_it(host):
    served_by = set()
    for _attempt in range(20):
        answer = edge(f"/api/uploads/{UPLOAD}")
        assert answer.status == 200, answer
        assert answer.json() == UPLOAD_BODY
        assert answer.headers["x-app-version"] == "v2"
        served_by.add(answer.headers["x-app-instance"])
    assert served_by == {"app1", "app2"}, served_by
    on_host = host.file(f"{UPLOADS}/{UPLOAD}")
    assert on_host.exists and on_host.uid == 1001
    assert json.loads(on_host.content_string) == UPLOAD_BODY


def test_deploying_the_running_version_changes_nothing(host, playbook):
    before = started_at(host, *APPS, CONTAINER["scraper"], CONTAINER["nginx"])
    lines = host.check_output("wc -l < /opt/connect/logs/deploy.log")
    run = playbook(playbook="deploy.yml", extra_vars={"release_image": IMAGE % "v2"})
    assert run.rc == 0, run
    assert run.recap["changed"] == 0, run
    assert started_at(host, *APPS, CONTAINER["scraper"], CONTAINER["nginx"]) == before
    assert host.check_output("wc -l < /opt/connect/logs/deploy.log") == lines


def test_broken_health_v3_fails_and_v2_keeps_serving(host):
    v2 = current_image(host)
    report = release("release_image=" + IMAGE % "v3-broken-health", expect_failure=True)
    assert report["playbook_rc"] != 0
    assert_no_failed_request(report)
    # nginx never sent a request to v3: it was never healthy.
    assert set(report["load"]["versions"]) == {"v2"}, report["load"]["versions"]
    assert current_image(host) == v2
    entry = report["deploy_log"]
    assert entry["result"] == "failed" and "app2" in entry["error"] and "serving now: app1 (v2), app2 (v2)" in entry["error"], entry
    assert edge("/api/health").json()["version"] == "v2"


def test_broken_migration_v4_restarts_nothing_and_leaves_the_database(host):
    before = started_at(host, *APPS)
    checksum = db_checksum(host)
    # No POSTs: the checksum covers every row.
    report = release("release_image=" + IMAGE % "v4-broken-migration", expect_failure=True, mix="get=70,slow=10,health=20")
    assert report["playbook_rc"] != 0
    assert_no_failed_request(report)
    assert set(report["load"]["versions"]) == {"v2"}
    assert started_at(host, *APPS) == before
    assert db_checksum(host) == checksum
    entry = report["deploy_log"]
    assert entry["result"] == "failed" and "migration failed" in entry["error"] and "schema is unchanged" in entry["error"], entry


def image_tags(host) -> dict:
    """{tag: image id} of the app's repository."""
    out = host.check_output(f"docker image ls --no-trunc --format '{{{{.Tag}}}} {{{{.ID}}}}' {REPOSITORY}")
    return dict(line.split() for line in out.splitlines())


def test_the_weekly_image_clean_up_keeps_the_newest_releases_and_what_a_rollback_needs(host):
    """connect-maintenance@images (the operations role's timer job): older release tags go with
    their images, but never the image of `previous` or `current`; the rollback below runs after it."""
    tags = image_tags(host)
    keep = CONTRACT["compose_stack_app_releases_kept"]
    # Old releases: their own images (a label each), and two old tags on the images of previous and current.
    fakes = [f"20200101T00000{n}-0000fa{n}" for n in range(keep + 1)]
    for n, tag in enumerate(fakes):
        host.check_output(f"printf 'FROM {REPOSITORY}:current\\nLABEL connect.test.old={n}\\n' | docker build -q -t {REPOSITORY}:{tag} -")
    on_previous, on_current = "20190101T000000-00000b1", "20190101T000000-00000b2"
    for source, tag in (("previous", on_previous), ("current", on_current)):
        host.check_output(f"docker tag {REPOSITORY}:{source} {REPOSITORY}:{tag}")
    before = image_tags(host)
    releases = sorted((t for t in before if t[:1].isdigit()), reverse=True)
    assert len(releases) > keep + 2, releases
    host.check_output("systemctl start connect-maintenance@images.service")
    after = image_tags(host)
    assert after["previous"] == tags["previous"] and after["current"] == tags["current"], (tags, after)
    in_use = set(host.check_output("docker ps -aq | xargs -r docker inspect -f '{{.Image}}'").split())
    protected = {before["previous"], before["current"]} | in_use
    expected = set(releases[:keep]) | {t for t in releases if before[t] in protected}
    assert {on_previous, on_current} <= expected
    assert {t for t in after if t[:1].isdigit()} == expected, (releases, after)
    for tag in set(fakes) - expected:
        assert host.run(f"docker image inspect {before[tag]}").rc != 0, f"the image of {tag} is still there"
    # A second run finds nothing more to remove.
    host.check_output("systemctl start connect-maintenance@images.service")
    status = json.loads(host.check_output(f"cat {MAINTENANCE_STATUS}/images.json"))
    assert [s["removed"] for s in status["steps"] if s["step"] == "releases"] == [[]], status
    assert image_tags(host) == after


def test_rollback_v2_to_v1_under_load_fails_no_request(host):
    report = release(playbook="rollback.yml")
    assert report["playbook_rc"] == 0, report["playbook_tail"]
    assert_no_failed_request(report)
    assert set(report["versions_after_playbook"]) == {"v1"}, report["versions_after_playbook"]
    entry = report["deploy_log"]
    assert entry["action"] == "rollback" and entry["result"] == "succeeded" and entry["version"] == "v1"


def test_deploy_log_is_one_json_object_per_attempt(host):
    lines = host.check_output("cat /opt/connect/logs/deploy.log").splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["action"], e["version"], e["result"]) for e in entries] == [
        ("deploy", "v2", "succeeded"),
        ("deploy", "v3", "failed"),
        ("deploy", "v4", "failed"),
        ("rollback", "v1", "succeeded"),
    ]
    for e in entries:
        assert {"time", "who", "what", "tag", "image", "previous", "seconds", "instances"} <= set(e)
    assert host.file("/opt/connect/logs/deploy.log").mode == 0o640


# Bad release input (no server needed) is in tests/integration/test_bad_input.py.


def test_rollback_to_a_release_that_is_not_there_is_refused(host, playbook):
    run = playbook(playbook="rollback.yml", extra_vars={"release_rollback_to": "20200101T000000-0000000"})
    assert run.rc != 0 and "release_rollback_to" in run.flat and "there is no release" in run.flat, run
    assert "docker image ls connect-app" in run.flat, run


def test_restarting_one_app_instance_under_load_fails_no_request(host):
    """restart.yml (issue 13): app1 recreated through the rolling restart, the other instance untouched."""
    before = started_at(host, *APPS)
    report = release("operations_restart_service=app1", playbook="restart.yml")
    assert report["playbook_rc"] == 0, report["playbook_tail"]
    assert_no_failed_request(report)
    after = started_at(host, *APPS)
    assert after[APPS[0]] != before[APPS[0]] and after[APPS[1]] == before[APPS[1]], (before, after)
    assert set(report["versions_after_playbook"]) == {"v1"}, report["versions_after_playbook"]


# In the order rotate.yml reaches them (it prints them so).
ROTATED = (
    "postgres_superuser_password", "postgres_owner_password", "postgres_monitor_password",
    "pgbouncer_admin_password", "pgbouncer_stats_password",
    "redis_cache_password", "redis_queue_password", "redis_admin_password", "redis_monitor_password",
    "grafana_admin_password",
)  # fmt: skip
# Each exporter's "I can read my service" metric (monitoring role), read straight from the exporter.
EXPORTERS_UP = {
    "postgres-exporter": "pg_up", "pgbouncer-exporter": "pgbouncer_up",
    "redis-exporter-cache": "redis_up", "redis-exporter-queue": "redis_up",
}  # fmt: skip


def exporters_up(host) -> dict:
    """{exporter: its *_up value}, from each exporter's /metrics on the backend network."""
    exporters = role_vars("monitoring")["__monitoring_exporters"]
    code = (
        "import json,sys,urllib.request\n"
        "out={}\n"
        "for name,(port,metric) in json.load(sys.stdin).items():\n"
        "    try: text=urllib.request.urlopen(f'http://{name}:{port}/metrics',timeout=20).read().decode()\n"
        "    except OSError as e: out[name]=str(e); continue\n"  # recreated, not listening yet
        "    out[name]=[float(l.split()[-1]) for l in text.splitlines() if l.split(' ')[0]==metric]\n"
        "print(json.dumps(out))"
    )
    wanted = json.dumps({name: [exporters[name]["port"], metric] for name, metric in EXPORTERS_UP.items()})
    reader = exporters["connect-exporter"]["container"]  # has python3 and sits on the backend network
    run = host.run(f"printf '%s' {shlex.quote(wanted)} | docker exec -i {reader} python3 -c {shlex.quote(code)}")
    assert run.rc == 0, run.stderr
    return json.loads(run.stdout)


def logs_in(host, user: str, password: str, via: str) -> bool:
    """A login with this password, straight to PostgreSQL or through PgBouncer (the password on stdin)."""
    target = f"-h 127.0.0.1 -p {PORT['postgres']}" if via == "postgres" else f"-h {SERVICES['pgbouncer']['service']} -p {PORT['pgbouncer']}"
    database = "pgbouncer" if user.startswith("pgbouncer") else "postgres" if via == "postgres" else DATABASE
    query = "SHOW VERSION" if database == "pgbouncer" else "SELECT 1"
    psql = f"psql -X -At {target} -U {user} -d {database} -c '{query}'"
    check = f"docker exec -i {CONTAINER['postgres']} sh -c {shlex.quote('IFS= read -r PGPASSWORD; export PGPASSWORD; ' + psql)}"
    return host.run(f"printf '%s\\n' {shlex.quote(password)} | {check}").rc == 0


def redis_logs_in(host, service: str, user: str, password: str) -> bool:
    """AUTH then PING on one Redis, the password on stdin (redis-cli's JSON-style quoting)."""
    auth = f"AUTH {json.dumps(password)}" if user == "default" else f"AUTH {user} {json.dumps(password)}"
    cli = f"docker exec -i {CONTAINER[service]} redis-cli -p {PORT[service]} --no-auth-warning"
    return host.run(f"printf '%s\\nPING\\n' {shlex.quote(auth)} | {cli}").stdout.split() == ["OK", "PONG"]


def test_rotating_every_password_under_load_fails_no_request(host, tmp_path):
    """rotate.yml (issue 13): PostgreSQL first (the owner's new password on its idle login role), then PgBouncer
    (both login roles); both Redis accept old and new while the instances and the scraper move to the new URLs,
    then the old login role is locked and Redis refuses the old passwords."""
    owner = CONTRACT["compose_stack_database"]["owner"]
    logins = (owner, owner + "_alt")
    before = [login for login in logins if logs_in(host, login, secret(host, "postgres_owner_password"), "pgbouncer")]
    old = {name: secret(host, name) for name in ROTATED}
    output = tmp_path / "rotate.out"
    report = release("rotate=" + ",".join(ROTATED), playbook="rotate.yml", output=str(output))
    assert report["playbook_rc"] == 0, output.read_text()[-3000:]
    assert_no_failed_request(report)
    new = {name: secret(host, name) for name in ROTATED}
    assert all(new[name] != old[name] for name in ROTATED), "a password was not replaced"
    printed = output.read_text()
    assert "rotated: " + ", ".join(ROTATED) in " ".join(printed.split()), printed[-2000:]
    for value in (*old.values(), *new.values()):
        assert value not in printed
    pgbouncer = role_defaults("pgbouncer")
    for user, name, via in (
        ("postgres", "postgres_superuser_password", "postgres"),
        (pgbouncer["pgbouncer_admin_user"], "pgbouncer_admin_password", "pgbouncer"),
        (pgbouncer["pgbouncer_stats_user"], "pgbouncer_stats_password", "pgbouncer"),
        (role_defaults("postgres")["postgres_monitor_user"], "postgres_monitor_password", "postgres"),
    ):
        assert not logs_in(host, user, old[name], via), f"{user} still logs in to {via} with the old password"
        assert logs_in(host, user, new[name], via), f"{user} cannot log in to {via} with the new password"
    # The owner's password: the other login role takes the new one, the old role refuses both, the app uses the new.
    now = [login for login in logins if logs_in(host, login, new["postgres_owner_password"], "pgbouncer")]
    assert len(before) == 1 and len(now) == 1 and now != before, (before, now)
    assert logs_in(host, now[0], new["postgres_owner_password"], "postgres")
    for login in logins:
        for via in ("postgres", "pgbouncer"):
            assert not logs_in(host, login, old["postgres_owner_password"], via), f"{login} still logs in to {via} with the old password"
    assert f"DATABASE_URL=postgres://{now[0]}:" in host.file(f"{CONTRACT['compose_stack_root']}/.env.production").content_string
    for service in ("redis-cache", "redis-queue"):
        redis = role_defaults("redis")
        for user, name in (
            ("default", service.replace("-", "_") + "_password"),
            (redis["redis_admin_user"], "redis_admin_password"),
            (redis["redis_monitor_user"], "redis_monitor_password"),
        ):
            assert not redis_logs_in(host, service, user, old[name]), f"{service} still takes {user}'s old password"
            assert redis_logs_in(host, service, user, new[name]), f"{service} refuses {user}'s new password"
    assert not host.run("ls /opt/connect/secrets/*.previous").succeeded, "a previous value was not forgotten"
    # Reloads go in through `docker exec`: a container `docker kill --signal HUP` reached is marked as
    # stopped by hand, and the engine leaves it down after a power cut (issue 22's bug, found with PgBouncer).
    marked = host.run("grep -l '\"HasBeenManuallyStopped\":true' /var/lib/docker/containers/*/config.v2.json").stdout
    assert not marked.strip(), f"containers Docker would not start after a power cut: {marked}"
    assert edge("/api/health").status == 200
    # The exporters moved to the new passwords with the rest: each reads its service again.
    deadline = time.monotonic() + 60
    while (up := exporters_up(host)) and not all(v == [1.0] for v in up.values()) and time.monotonic() < deadline:
        time.sleep(3)
    assert all(v == [1.0] for v in up.values()), up
