"""PostgreSQL's continuous backup (issue 11): WAL archived through pgBackRest
within the archive timeout to both repositories (local, and the "off-site"
S3 stand-in on the machine: harness/s3-stand-in.sh), a full backup in each,
both encrypted, the local one private, and a restore of the latest backup
plus WAL from each repository alone into a scratch container that holds a
row written just before."""

import json
import re
import shlex
import subprocess
import time
import uuid
from datetime import datetime, timezone

import boto3
import pytest
from conftest import CONTAINER, CONTRACT, DATABASE, SERVER, VOLUMES, harness_vars, role_defaults

# A failed test here may leave a half-run converge: put the data tier back.
RESTORE = ("--tags", "postgres,backup")

PG = CONTAINER["postgres"]
DEFAULTS = role_defaults("postgres")
STANZA = DEFAULTS["postgres_backup_stanza"]
REPO = f"{VOLUMES['backups']}/pgbackrest"
CONFIG_DIR = f"{CONTRACT['compose_stack_root']}/config/pgbackrest"
PROBE_TABLE = "CREATE TABLE IF NOT EXISTS backup_probe (id serial PRIMARY KEY, note text, at timestamptz DEFAULT now())"
REPOS = (1, 2)  # the harness turns the off-site repository on
S3 = harness_vars()
PSQL = f"docker exec -i -u postgres {PG} psql -X -At -v ON_ERROR_STOP=1"
PGBACKREST = f"docker exec -u postgres {PG} pgbackrest --stanza={STANZA}"


def info(host) -> dict:
    return json.loads(host.check_output(f"{PGBACKREST} --output=json info"))[0]


def wait_archived(host, segment: str, timeout: int = 60) -> float:
    """Seconds until every repository's newest archived WAL is ``segment`` or later."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        newest = {a["database"]["repo-key"]: a["max"] or "" for a in info(host)["archive"]}
        if all(newest.get(repo, "") >= segment for repo in REPOS):
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"WAL {segment} not in every repository within {timeout} s: {info(host)['archive']}")


def offsite_objects() -> tuple:
    """The S3 stand-in's client and this server's bucket (named after it)."""
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9000",
        region_name=S3["postgres_backup_s3_region"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return client, SERVER


def test_wal_archiving_runs_through_pgbackrest(host):
    settings = dict(
        line.split("|", 1)
        for line in host.check_output(
            f"{PSQL} -c \"SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'archive_timeout')\""
        ).splitlines()
    )
    assert settings["archive_mode"] == "on"
    assert settings["archive_command"] == f"pgbackrest --stanza={STANZA} archive-push %p"
    assert 0 < int(settings["archive_timeout"]) <= 60, settings


def test_a_committed_row_reaches_the_repository_within_seconds(host):
    host.check_output(f"{PSQL} -d {DATABASE} -c '{PROBE_TABLE}'")
    host.check_output(f"{PSQL} -d {DATABASE} -c \"INSERT INTO backup_probe (note) VALUES ('archived')\"")
    segment = host.check_output(f"{PSQL} -c 'SELECT pg_walfile_name(pg_switch_wal())'")
    seconds = wait_archived(host, segment)
    print(f"WAL {segment} in both repositories {seconds:.1f} s after the switch")
    failed = host.check_output(f'{PSQL} -c "SELECT coalesce(last_failed_time < last_archived_time, true) FROM pg_stat_archiver"')
    assert failed == "t", "the last archive attempt failed"


def test_each_repository_has_a_full_backup_and_check_passes(host):
    stanza = info(host)
    assert stanza["status"]["code"] == 0, stanza["status"]
    assert [r["status"]["code"] for r in stanza["repo"]] == [0, 0], stanza["repo"]
    for repo in REPOS:
        assert [b["type"] for b in stanza["backup"] if b["database"]["repo-key"] == repo][:1] == ["full"], (repo, stanza["backup"])
    assert host.run(f"{PGBACKREST} check").rc == 0


def test_the_offsite_copy_is_encrypted(host):
    client, bucket = offsite_objects()
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    wal = [k for k in keys if "/archive/" in k and k.rsplit("/", 1)[-1].startswith("0000")]
    assert wal, f"no archived WAL in the bucket {bucket}: {keys[:10]}"
    head = client.get_object(Bucket=bucket, Key=wal[0], Range="bytes=0-7")["Body"].read()
    assert head == b"Salted__", f"{wal[0]} is not encrypted"


def test_the_repository_is_encrypted_and_private(host):
    wal = host.check_output(f"find {REPO}/archive -type f -name '0000*' | head -1")
    assert wal, "no archived WAL file in the repository"
    assert host.check_output(f"head -c 8 {wal}") == "Salted__", "an archived WAL file is not encrypted"
    assert host.check_output(f"stat -c '%a %u' {REPO}") == "700 999"
    assert host.check_output(f"stat -c '%a %u' {CONFIG_DIR}/pgbackrest.conf") == "600 999"
    passphrase = host.check_output(f"sed -n 's/^repo1-cipher-pass=//p' {CONFIG_DIR}/pgbackrest.conf")
    assert len(passphrase) >= 20
    assert passphrase not in host.check_output(f"docker inspect {PG}")
    assert passphrase not in host.check_output(f"{PGBACKREST} --output=json info")


def scratch_restore(host, repo: int, sql: str, target: str = "") -> tuple[str, float]:
    """Restore repository ``repo`` (the latest, or to ``target`` time) into a
    scratch container, start it, run ``sql`` once recovery is over; its
    answer and the seconds it all took. The production repositories and
    configuration are mounted read-only; the restored cluster lives and dies
    in the container (no network, or for the off-site repository only the
    way out the postgres container has)."""
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {PG}")
    if repo == 1:
        network = "--network none"
    else:
        gateway = host.check_output("ip route | awk '/^default/ {print $3; exit}'")
        network = f"--network egress --add-host {S3['postgres_backup_s3_endpoint']}:{gateway}"
    to_time = f" --type=time --target={shlex.quote(target)} --target-action=promote" if target else ""
    script = (
        "set -e; "
        f"pgbackrest --stanza={STANZA} --pg1-path=/tmp/restore --repo={repo}{to_time} restore; "
        "postgres -D /tmp/restore -c listen_addresses= -c unix_socket_directories=/tmp -c archive_mode=off "
        "-c config_file=/tmp/restore/postgresql.conf -c hba_file=/tmp/restore/pg_hba.conf >/tmp/pg.log 2>&1 & "
        "for i in $(seq 120); do "
        "  [ \"$(psql -X -At -h /tmp -U postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)\" = f ] && break; sleep 0.5; "
        "done; "
        f"psql -X -At -h /tmp -U postgres -d {DATABASE} -c {shlex.quote(sql)}"
    )
    started = time.monotonic()
    found = host.run(
        f"docker run --rm {network} --user 999:999 --entrypoint bash "
        f"-v {REPO}:/var/lib/pgbackrest:ro -v {CONFIG_DIR}:/etc/pgbackrest:ro "
        f"--tmpfs /var/spool/pgbackrest:uid=999,gid=999 --tmpfs /var/log/pgbackrest:uid=999,gid=999 "
        f"{image} -c {shlex.quote(script)}"
    )
    assert found.rc == 0, found.stderr
    return found.stdout.strip().splitlines()[-1], time.monotonic() - started


def write_probe(host, note: str) -> str:
    """Insert a row; the commit's time as PostgreSQL reports it."""
    host.check_output(f"{PSQL} -d {DATABASE} -c '{PROBE_TABLE}'")
    host.check_output(f"{PSQL} -d {DATABASE} -c \"INSERT INTO backup_probe (note) VALUES ('{note}')\"")
    return host.check_output(f"{PSQL} -c 'SELECT clock_timestamp()::text'")


@pytest.mark.parametrize("repo", REPOS)
def test_the_latest_backup_and_wal_restore_from_one_repository_alone(host, repo):
    note = f"restore-{uuid.uuid4().hex[:8]}"
    write_probe(host, note)
    wait_archived(host, host.check_output(f"{PSQL} -c 'SELECT pg_walfile_name(pg_switch_wal())'"))
    answer, seconds = scratch_restore(host, repo, f"SELECT count(*) FROM backup_probe WHERE note = '{note}'")
    print(f"restore of the latest backup plus WAL from repo{repo} into a scratch container: {seconds:.1f} s")
    assert answer == "1"


def test_a_point_in_time_between_two_writes_keeps_the_first_and_not_the_second(host):
    first, second = f"pitr-first-{uuid.uuid4().hex[:8]}", f"pitr-second-{uuid.uuid4().hex[:8]}"
    write_probe(host, first)
    time.sleep(1)
    target = host.check_output(f"{PSQL} -c 'SELECT clock_timestamp()::text'")
    time.sleep(1)
    write_probe(host, second)
    wait_archived(host, host.check_output(f"{PSQL} -c 'SELECT pg_walfile_name(pg_switch_wal())'"))
    answer, seconds = scratch_restore(
        host, 1, f"SELECT coalesce(string_agg(note, ',' ORDER BY id), '') FROM backup_probe WHERE note IN ('{first}', '{second}')", target
    )
    print(f"point-in-time restore to {target}: {seconds:.1f} s")
    assert answer == first, f"restored to {target}: {answer!r}"
    host.check_output(f"{PSQL} -d {DATABASE} -c 'DROP TABLE IF EXISTS backup_probe'")


# A scratch cluster in a throw-away container of the same image: weekly full
# backups "taken" 98.5, 91.5, 84.5 and 77.5 days ago (faketime, in the test
# image only; offline backups of a stopped cluster), then pgBackRest's expire with the window the role wrote for
# the repository dr.yml restores from. The live repositories are not touched.
EXPIRE_SCRIPT = r"""
set -euo pipefail
export PGDATA=/tmp/pg
initdb -A trust >/dev/null
printf '%s\n' '[global]' repo1-path=/tmp/repo repo1-retention-full-type=time "repo1-retention-full=$1" \
  lock-path=/tmp/lock log-path=/tmp log-level-console=warn '[t]' pg1-path=/tmp/pg \
  > /tmp/pgbackrest.conf
B="pgbackrest --config=/tmp/pgbackrest.conf --stanza=t"
# Offline backups of the stopped cluster: pgBackRest then dates each one by its own clock (an online one
# asks PostgreSQL's), which faketime sets back.
$B --no-online stanza-create
for hours in 2364 2196 2028 1860; do
  FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "-${hours}h" $B --no-online --type=full --repo1-retention-full=9999 backup
done
$B expire
$B --output=json info
"""


def test_database_backups_expire_by_the_clock_past_the_retention_and_no_later(host):
    days = DEFAULTS["postgres_backup_retention_days"]
    conf = host.check_output(f"cat {CONFIG_DIR}/pgbackrest.conf")
    assert "repo2-retention-full-type=time" in conf and "repo1-retention-full-type=time" in conf, conf
    window = int(re.search(r"^repo2-retention-full=(\d+)$", conf, re.MULTILINE).group(1))
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {PG}")
    script = shlex.quote(EXPIRE_SCRIPT)
    out = host.check_output(f"docker run --rm -u postgres --network none --entrypoint bash {image} -c {script} expire {window}")
    kept = json.loads(out)[0]["backup"]
    now = time.time()
    ages = sorted(round((now - b["timestamp"]["start"]) / 86400, 1) for b in kept)
    print(f"retention {days} days (pgBackRest's window {window}): kept the sets {ages} days old of 77.5, 84.5, 91.5, 98.5")
    assert max(ages) <= days, f"a backup set older than {days} days survived the expiry: {ages}"
    assert min(ages) < window < max(ages), f"the window of {window} days is not covered by what was kept: {ages}"


def test_a_different_passphrase_is_refused_before_anything_changes(host, playbook):
    conf = f"{CONFIG_DIR}/pgbackrest.conf"
    before = host.check_output(f"sha256sum {conf}")
    other = "another-passphrase-the-repository-never-saw-0123456789"
    run = playbook("--tags", "postgres", extra_vars={"postgres_backup_local_cipher_pass": other})
    assert run.rc != 0, run
    assert "postgres_backup_local_cipher_pass differs from the passphrase the repository on this server uses" in run.flat, run
    assert run.recap["changed"] == 0, run
    assert other not in run.output
    assert host.check_output(f"sha256sum {conf}") == before
    assert info(host)["status"]["code"] == 0


# --- The schedules (the backup role) ---
BACKUP = role_defaults("backup")
LOG = f"{VOLUMES['logs']}/backup.log"
STATUS = f"{VOLUMES['backups']}/status"


@pytest.mark.parametrize("job", ["pg-full", "pg-diff", "pg-check", "pg-verify"])
def test_each_job_has_an_active_timer_on_its_kst_schedule(host, job):
    timer = f"connect-backup-{job}.timer"
    props = dict(
        line.split("=", 1)
        for line in host.check_output(f"systemctl show --property=ActiveState,UnitFileState,TimersCalendar {timer}").splitlines()
    )
    assert (props["ActiveState"], props["UnitFileState"]) == ("active", "enabled"), props
    calendar = BACKUP[f"backup_postgres_{job[3:]}_calendar"]
    assert calendar.split()[-1] == "Asia/Seoul" and calendar.split()[-2] in props["TimersCalendar"], props


def test_a_job_run_by_hand_backs_up_every_repository_and_reports_one_json_line(host):
    before = {b["label"] for b in info(host)["backup"]}
    host.check_output("systemctl start connect-backup@pg-diff.service")
    record = json.loads(host.check_output(f"tail -1 {LOG}"))
    assert record["job"] == "pg-diff" and record["result"] == "ok", record
    # Each PostgreSQL repository, the manifest, its restore point archived, then the manifest kept in both restic repositories.
    assert [step["repo"] for step in record["steps"]] == [*REPOS, "manifest", "archived", "local", "local", "offsite", "offsite"], record
    assert json.loads(host.check_output(f"cat {STATUS}/pg-diff.json")) == record
    manifest = json.loads(
        host.check_output(
            f"connect-backup restic offsite dump --no-cache --tag pg-manifest latest {VOLUMES['backups']}/staging/pg-manifest.json"
        )
    )
    assert manifest["restore_point"].startswith("connect-manifest-") and "public.items" in manifest["tables"], manifest
    new = [b for b in info(host)["backup"] if b["label"] not in before]
    assert sorted((b["type"], b["database"]["repo-key"]) for b in new) == [("diff", repo) for repo in REPOS], new
    print(f"pg-diff on {len(REPOS)} repositories: {record['seconds']} s")


def test_a_job_that_fails_fails_its_unit_and_says_why(host):
    run = host.run("systemctl start connect-backup@pg-nonsense.service")
    assert run.rc != 0
    record = json.loads(host.check_output(f"tail -1 {LOG}"))
    assert record["result"] == "failed" and "unknown job 'pg-nonsense'" in record["error"], record
    assert host.run("systemctl is-failed connect-backup@pg-nonsense.service").stdout.strip() == "failed"
    host.run("systemctl reset-failed connect-backup@pg-nonsense.service")


# --- The file classes (restic) ---
RESTIC = f"restic --repo {VOLUMES['backups']}/restic --password-file {CONTRACT['compose_stack_root']}/secrets/restic_password --no-cache"


def snapshots(host, tag: str) -> list:
    return json.loads(host.check_output(f"{RESTIC} snapshots --tag {tag} --json"))


def test_the_uploads_timer_is_on_its_kst_schedule(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show --property=ActiveState,UnitFileState,TimersCalendar connect-backup-files-uploads.timer"
        ).splitlines()
    )
    assert (props["ActiveState"], props["UnitFileState"]) == ("active", "enabled"), props
    assert BACKUP["backup_uploads_calendar"].split()[-2] in props["TimersCalendar"], props


def test_an_uploaded_file_is_backed_up_and_restores_byte_for_byte(host):
    name = f"backup-probe-{uuid.uuid4().hex[:8]}.txt"
    path = f"{VOLUMES['uploads']}/{name}"
    host.check_output(f"head -c 4096 /dev/urandom | base64 > {path}")
    digest = host.check_output(f"sha256sum < {path}")
    host.check_output("systemctl start connect-backup@files-uploads.service")
    record = json.loads(host.check_output(f"tail -1 {LOG}"))
    assert record["job"] == "files-uploads" and record["result"] == "ok", record
    restored = host.check_output(f"{RESTIC} dump --tag uploads latest {path} | sha256sum")
    assert restored == digest
    host.check_output(f"rm -f {path}")


# Each class's tag, its period (days) and its job.
CLASSES = {
    "uploads": ("backup_uploads_retention_days", "files-uploads"),
    "redis-queue": ("backup_queue_retention_days", "files-queue"),
    "config": ("backup_config_retention_days", "files-config"),
    "audit-logs": ("backup_audit_retention_days", "files-audit"),
    "financial": ("backup_financial_retention_days", "files-financial"),
}


def repo_snapshots(host, repo: str, tag: str) -> list:
    return json.loads(host.check_output(f"connect-backup restic {repo} snapshots --no-cache --tag {tag} --json"))


def ages(host, repo: str, tag: str) -> list:
    now = datetime.now(timezone.utc)
    # restic prints nanoseconds; fromisoformat takes microseconds.
    return sorted((now - datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", s["time"]))).days for s in repo_snapshots(host, repo, tag))


@pytest.mark.parametrize("tag", sorted(CLASSES))
def test_each_class_forgets_what_is_past_its_period_in_both_repositories_and_keeps_the_rest(host, tag):
    setting, job = CLASSES[tag]
    days = BACKUP[setting]
    old = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - (days + 10) * 86400))
    recent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - (days - 10) * 86400))
    for repo in ("local", "offsite"):
        for when in (old, recent):
            host.check_output(f"connect-backup restic {repo} backup --no-cache --tag {tag} --host connect --time '{when}' /etc/hostname")
    host.check_output(f"systemctl start connect-backup@{job}.service")
    record = json.loads(host.file(f"{VOLUMES['backups']}/status/{job}.json").content_string)
    assert record["result"] == "ok", record
    assert sum(step.get("removed", 0) for step in record["steps"]) >= 2, record  # the old one, in each repository
    for repo in ("local", "offsite"):
        found = ages(host, repo, tag)
        assert all(age < days for age in found), f"{repo}: a {tag} snapshot past {days} days survived: ages {found}"
        assert any(days - 12 <= age <= days - 8 for age in found), f"{repo}: the one {days - 10} days old was deleted: {found}"
        assert any(age == 0 for age in found), f"{repo}: the job's own snapshot is missing: {found}"


def test_the_queue_snapshot_is_redis_own_and_restores_the_jobs(host):
    key = f"backup-probe-{uuid.uuid4().hex[:8]}"
    queue = CONTAINER["redis-queue"]
    cli = (
        f"docker exec -i {queue} sh -c '{{ IFS= read -r REDISCLI_AUTH || true; }}; export REDISCLI_AUTH; "
        f"exec redis-cli -p {role_defaults('compose_stack')['compose_stack_services']['redis-queue']['port']} "
        f'--user {role_defaults("redis")["redis_admin_user"]} "$@"\' sh'
    )
    secret_file = f"{CONTRACT['compose_stack_root']}/secrets/redis_admin_password"
    host.check_output(f"{cli} rpush {key} a b < {secret_file}")
    host.check_output("systemctl start connect-backup@files-queue.service")
    staged = f"{VOLUMES['backups']}/staging/redis-queue.rdb"
    assert not host.file(staged).exists, "the snapshot file stays beside the repositories"
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {queue}")
    for repo in ("local", "offsite"):
        check = host.run(
            f"connect-backup restic {repo} dump --no-cache --tag redis-queue latest {staged} > /tmp/q.rdb && "
            f"docker run --rm -v /tmp/q.rdb:/q.rdb:ro {image} redis-check-rdb /q.rdb"
        )
        assert check.rc == 0 and "RDB looks OK" in check.stdout, check.stdout + check.stderr
    host.check_output(f"{cli} del {key} < {secret_file}")


def test_the_configuration_is_kept_without_its_secrets(host):
    host.check_output("systemctl start connect-backup@files-config.service")
    listed = host.check_output("connect-backup restic offsite ls --no-cache --tag config latest")
    root = CONTRACT["compose_stack_root"]
    assert f"{root}/docker-compose.production.yml" in listed and f"{root}/config/nginx" in listed
    for never in (f"{root}/secrets", f"{root}/config/pgbackrest", f"{root}/.env", f"{root}/data", VOLUMES["uploads"]):
        assert never not in listed, f"{never} is in the configuration's backup"


def test_audit_logs_are_exported_in_one_snapshot_and_restore(host):
    host.check_output(f"{PSQL} -d {DATABASE} -c \"INSERT INTO audit_logs (actor, action) VALUES ('ops', 'backup-probe')\"")
    host.check_output("systemctl start connect-backup@files-audit.service")
    dump = f"{VOLUMES['backups']}/staging/audit-logs.dump"
    assert not host.file(dump).exists, "the export stays beside the repositories"
    rows = host.check_output(
        f"connect-backup restic offsite dump --no-cache --tag audit-logs latest {dump} | "
        f"docker exec -i {PG} pg_restore --data-only --table=audit_logs -f -"
    )
    assert "backup-probe" in rows


def test_financial_records_are_encrypted_to_a_key_the_server_does_not_hold(host):
    marker = f"payment-{uuid.uuid4().hex[:8]}"
    host.check_output(
        f"{PSQL} -d {DATABASE} -c \"WITH s AS (INSERT INTO subscriptions (org_name, plan) VALUES ('{marker}', 'pro') RETURNING id) "
        f'INSERT INTO payments (subscription_id, amount_krw) SELECT id, 990000 FROM s"'
    )
    host.check_output("systemctl start connect-backup@files-financial.service")
    staged = f"{VOLUMES['backups']}/staging/financial.dump.age"
    assert not host.file(staged).exists
    encrypted = f"/tmp/financial-{marker}.age"
    host.check_output(f"connect-backup restic offsite dump --no-cache --tag financial latest {staged} > {encrypted}")
    assert host.file(encrypted).content[:21] == b"age-encryption.org/v1"
    # No age identity anywhere on the server: nothing there can decrypt it.
    found = host.run(
        "grep -rIl -e 'AGE-SECRET-KEY-1' /etc /root /home /opt /srv /tmp /usr/local /var/lib --exclude-dir=docker 2>/dev/null | head -5"
    )
    assert found.stdout.strip() == "", f"an age private key is on the server: {found.stdout}"
    assert host.run(f"age -d {encrypted}").rc != 0
    # Off the server, the private half decrypts it: the payment is in it.
    data = subprocess.run(["docker", "exec", SERVER, "cat", encrypted], capture_output=True, check=True).stdout
    plain = subprocess.run(
        ["age", "-d", "-i", "/var/lib/connect-harness/keys/financial_age"], input=data, capture_output=True, check=True
    ).stdout
    assert plain[:5] == b"PGDMP"
    rows = subprocess.run(
        ["docker", "exec", "-i", SERVER, "docker", "exec", "-i", PG, "pg_restore", "--data-only", "--table=subscriptions", "-f", "-"],
        input=plain,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert marker in rows
    host.check_output(f"rm -f {encrypted}")


def test_the_drill_restores_into_a_scratch_project_and_leaves_the_stack_alone(host, playbook):
    before = host.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {PG}")
    run = playbook(playbook="drill.yml")
    assert run.rc == 0, run
    record = json.loads(host.file(f"{VOLUMES['backups']}/status/drill.json").content_string)
    assert record["result"] == "ok" and [s["repo"] for s in record["steps"]] == [
        "manifest",
        "postgres",
        "replay",
        "compare",
        "uploads",
        "queue",
        "cleanup",
    ], record
    print("drill: " + ", ".join(f"{s['repo']} {s['seconds']} s" for s in record["steps"]) + f"; {record['seconds']} s in all")
    assert host.check_output("docker ps -a --filter label=com.docker.compose.project=connect-drill -q") == ""
    assert not host.file(f"{VOLUMES['backups']}/staging/drill").exists
    assert host.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {PG}") == before


def test_the_queue_is_snapshotted_every_six_hours(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output("systemctl show --property=ActiveState,TimersCalendar connect-backup-files-queue.timer").splitlines()
    )
    assert props["ActiveState"] == "active", props
    assert BACKUP["backup_queue_calendar"].split()[-2] in props["TimersCalendar"], props
    shown = host.check_output(f"systemd-analyze calendar --iterations=5 {shlex.quote(BACKUP['backup_queue_calendar'])}")
    stamps = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S") for m in re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) KST", shown)]
    assert len(stamps) == 5 and {(b - a).total_seconds() for a, b in zip(stamps[:-1], stamps[1:], strict=True)} == {6 * 3600}, shown


def test_pre_deploy_dumps_past_their_period_are_deleted_and_the_recent_kept(host):
    days = BACKUP["backup_predeploy_retention_days"]
    dumps = CONTRACT["compose_stack_predeploy_dumps"]
    directory = dumps["dir"].replace("{{ compose_stack_volumes['backups'] }}", VOLUMES["backups"])
    old = f"{directory}/{dumps['prefix']}20260101T000000-0000001{dumps['suffix']}"
    recent = f"{directory}/{dumps['prefix']}20260102T000000-0000002{dumps['suffix']}"
    host.check_output(f"install -d -m 0700 {directory} && touch -d '{days + 1} days ago' {old} && touch -d '{days - 1} days ago' {recent}")
    try:
        assert host.check_output("systemctl show --property=ActiveState connect-backup-pre-deploy.timer") == "ActiveState=active"
        host.check_output("systemctl start connect-backup@pre-deploy.service")
        record = json.loads(host.file(f"{STATUS}/pre-deploy.json").content_string)
        assert record["result"] == "ok" and record["steps"][0]["removed"] >= 1, record
        assert not host.file(old).exists, f"a dump {days + 1} days old survived"
        assert host.file(recent).exists, f"a dump {days - 1} days old was deleted"
    finally:
        host.run(f"rm -f {old} {recent}")


def test_the_monthly_report_says_what_is_kept_and_what_was_deleted(host):
    host.check_output("systemctl start connect-backup@report.service")
    record = json.loads(host.file(f"{VOLUMES['backups']}/status/report.json").content_string)
    assert record["result"] == "ok", record
    report = json.loads(host.file(record["steps"][0]["report"]).content_string)
    for tag, (setting, job) in CLASSES.items():
        assert job.startswith("files-")
        assert report["classes"][tag]["kept_days"] == BACKUP[setting]
        assert set(report["classes"][tag]["repositories"]) == {"local", "offsite"}
    # The expiry test above deleted one snapshot per class and repository.
    assert report["classes"]["uploads"]["repositories"]["offsite"]["deleted"] >= 1, report["classes"]["uploads"]
    assert set(report["postgres"]) == {"1", "2"}
    assert report["postgres"]["2"]["kept_days"] == DEFAULTS["postgres_backup_retention_days"], report["postgres"]
    assert report["classes"]["pre-deploy"]["kept_days"] == BACKUP["backup_predeploy_retention_days"]
    assert report["classes"]["pre-deploy"]["repositories"]["local"]["deleted"] >= 1, report["classes"]["pre-deploy"]


def test_a_full_backup_volume_fails_the_job_loudly_and_keeps_what_was_there(host):
    staging = f"{VOLUMES['backups']}/staging"
    before = repo_snapshots(host, "local", "audit-logs")
    # A 1 MiB volume, filled: the export cannot be written.
    host.check_output(f"mount -t tmpfs -o size=1m tmpfs {staging} && fallocate -l 1m {staging}/filler || true")
    try:
        run = host.run("systemctl start connect-backup@files-audit.service")
        record = json.loads(host.file(f"{VOLUMES['backups']}/status/files-audit.json").content_string)
    finally:
        host.run(f"umount {staging}")
    assert run.rc != 0 and record["result"] == "failed", record
    assert record["steps"][0]["repo"] == "export" and "no space left" in record["steps"][0]["error"].lower(), record
    assert host.run("systemctl is-failed connect-backup@files-audit.service").stdout.strip() == "failed"
    host.run("systemctl reset-failed connect-backup@files-audit.service")
    assert repo_snapshots(host, "local", "audit-logs") == before  # nothing forgotten after a failed export
    # With room again, the next run succeeds (and the status part finds nothing to report).
    host.check_output("systemctl start connect-backup@files-audit.service")


def test_a_corrupt_backup_is_found_by_the_weekly_verify(host):
    # One file of the newest full backup in the local repository, bytes flipped; put back after.
    label = [b for b in info(host)["backup"] if b["database"]["repo-key"] == 1][-1]["label"]
    victim = host.check_output(f"find {REPO}/backup/{STANZA}/{label}/pg_data -type f -size +8k | sort | head -1")
    host.check_output(f"cp -p {victim} /tmp/victim.bak && printf 'corrupt' | dd of={victim} bs=1 seek=4096 conv=notrunc status=none")
    try:
        run = host.run("systemctl start connect-backup@pg-verify.service")
        record = json.loads(host.file(f"{VOLUMES['backups']}/status/pg-verify.json").content_string)
    finally:
        host.check_output(f"cp -p /tmp/victim.bak {victim} && rm -f /tmp/victim.bak")
        host.run("systemctl reset-failed connect-backup@pg-verify.service")
    assert run.rc != 0 and record["result"] == "failed", record
    failed = [s for s in record["steps"] if s["rc"] != 0]
    assert [s["repo"] for s in failed] == [1], record  # the local repository, not the off-site one
    assert "checksum invalid" in failed[0]["error"], failed
    # The file put back, the next verify passes.
    host.check_output("systemctl start connect-backup@pg-verify.service")
