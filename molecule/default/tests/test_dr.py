"""dr.yml (issue 11): the server is lost at an arbitrary moment while a writer
inserts a timestamped row every second; a new server with the same name
(its off-site bucket kept: harness/server.sh create --keep-offsite) is
recovered by dr.yml from the off-site repositories alone. Checked: the
newest surviving row against the moment of loss (RPO), the realistic
dataset's tables against the manifest (dr.yml compares every table at the
manifest's restore point; here the counts again after the replay), an
upload and the queue's jobs, health through nginx from outside, a rerun
with nothing changed, and the refusal to recover over live data; then, told
to, a recovery over the live server to a point in time between two writes.

The last part: the server it leaves is the recovered one (Molecule then
destroys it). CONNECT_DR_DATASET=programs,organizations,matches sizes the
dataset (default: the issue's 150000,20000,500000)."""

import os
import random
import sys
import time
from datetime import datetime, timezone

from conftest import CONTAINER, CONTRACT, PORT, PROJECT, SERVER, VOLUMES, edge, role_defaults, wait_healthy

# The steps are the benchmark's (benchmarks/dr_recovery.py prints the same figures for any server).
sys.path.insert(0, str(PROJECT / "benchmarks"))
import dr_recovery as dr  # noqa: E402

PG = CONTAINER["postgres"]
QUEUE = CONTAINER["redis-queue"]
SIZES = tuple(int(n) for n in os.environ.get("CONNECT_DR_DATASET", ",".join(map(str, dr.DATASET_SIZES))).split(","))
PSQL = dr.PSQL
# The ports molecule/default/create.yml publishes (another server's: CONNECT_TEST_PUBLISH).
PUBLISH = os.environ.get("CONNECT_TEST_PUBLISH", "127.0.0.1:18080:80,127.0.0.1:18443:443").split(",")
UPLOAD = "dr-proof.txt"
ADMIN = role_defaults("redis")["redis_admin_user"]
# Filled by the loss test, read by the ones after it.
STATE: dict = {}


def queue_cli(host, *args: str) -> str:
    """redis-cli on the queue as its admin user, the password on standard input (as the backup job does)."""
    return host.check_output(
        f"docker exec -i {QUEUE} sh -c '{{ IFS= read -r REDISCLI_AUTH || true; }}; export REDISCLI_AUTH; "
        f"exec redis-cli -p {PORT['redis-queue']} --user {ADMIN} {' '.join(args)}' "
        f"< {CONTRACT['compose_stack_root']}/secrets/redis_admin_password"
    )


def test_dr_refuses_a_server_with_live_data(playbook):
    run = playbook(playbook="dr.yml")
    assert run.rc != 0, run
    assert "holds a PostgreSQL cluster" in run.flat and "dr_overwrite_live_data=true" in run.flat, run
    assert run.recap["changed"] == 0, run


def test_the_server_is_lost_while_a_writer_inserts_every_second(host):
    STATE["dataset"], seconds = dr.load_dataset(SERVER, SIZES)
    print(f"dataset loaded in {seconds:.1f} s: {STATE['dataset']}")
    host.check_output(f"echo dr-proof-{SERVER} > {VOLUMES['uploads']}/{UPLOAD}")
    queue_cli(host, "rpush", "dr:jobs", "job-1", "job-2", "job-3")
    # The nightly jobs, now: a full backup with its manifest, the uploads, the queue.
    for job in ("pg-full", "files-uploads", "files-queue"):
        record = dr.run_job(SERVER, job)
        assert record["result"] == "ok", record
        print(f"{job}: {record['seconds']} s")
    # Two known writes around a point in time (dr.yml -e dr_target_time, last test), archived at once.
    host.check_output(f"{PSQL} -c 'CREATE TABLE dr_marks (name text PRIMARY KEY)' -c \"INSERT INTO dr_marks VALUES ('before-target')\"")
    time.sleep(1.5)
    STATE["target"] = (
        host.check_output(f"{PSQL} -c \"SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')\"") + "+00"
    )
    time.sleep(1.5)
    host.check_output(f"{PSQL} -c \"INSERT INTO dr_marks VALUES ('after-target')\" -c 'SELECT pg_switch_wal()'")
    # The writer lives on the server and dies with it.
    dr.start_writer(SERVER)
    time.sleep(random.uniform(8, 25))
    newest = dr.newest_row(SERVER)
    STATE["lost_at"] = dr.lose(SERVER)
    print(
        f"server destroyed at {datetime.fromtimestamp(STATE['lost_at'], timezone.utc).isoformat()} "
        f"(newest row {STATE['lost_at'] - newest:.1f} s before)"
    )


def test_dr_recovers_a_new_server_from_the_offsite_repositories(host, playbook):
    assert "lost_at" in STATE, "the loss test did not run"
    dr.recreate(SERVER, PUBLISH)
    begun = time.monotonic()
    run = playbook(playbook="dr.yml")
    STATE["rto"] = time.monotonic() - begun
    assert run.rc == 0, run
    # No secret in dr.yml's own output (the vault's passwords, the repositories' passphrases).
    secrets = host.check_output(
        "for f in /opt/connect/secrets/*_password /opt/connect/secrets/app_encryption_key; do cat $f; echo; done; "
        "sed -n 's/^repo[0-9]*-cipher-pass=//p' /opt/connect/config/pgbackrest/pgbackrest.conf"
    ).split()
    assert len(secrets) >= 8 and not [s for s in secrets if len(s) >= 8 and s in run.output], "a secret is in dr.yml's output"
    report = dr.dr_report(SERVER)
    STATE["report"] = report
    assert report["manifest"]["result"] == "ok", report
    rpo = STATE["lost_at"] - dr.newest_row(SERVER)
    print(
        f"RPO {rpo:.1f} s (newest surviving row before the loss); RTO {STATE['rto']:.0f} s from a bare server to healthy "
        f"through nginx; restore phase {report['restore_seconds']} s; newest restored transaction {report['newest_transaction']}"
    )
    assert rpo <= 60, f"the newest surviving row is {rpo:.1f} s older than the loss: more than 60 s lost"


def test_the_recovered_server_serves_the_data_it_had(host):
    assert "report" in STATE, "dr.yml did not recover the server"
    assert dr.dataset_counts(SERVER) == STATE["dataset"]
    assert host.file(f"{VOLUMES['uploads']}/{UPLOAD}").content_string.strip() == f"dr-proof-{SERVER}"
    assert queue_cli(host, "lrange", "dr:jobs", "0", "-1").split() == ["job-1", "job-2", "job-3"]
    wait_healthy(host, PG)
    assert edge("/api/health").status == 200


def test_a_rerun_of_dr_changes_nothing(playbook):
    assert "report" in STATE, "dr.yml did not recover the server"
    run = playbook(playbook="dr.yml")
    assert run.rc == 0 and run.recap["changed"] == 0, run


def test_dr_over_live_data_to_a_point_in_time_keeps_the_write_before_it_only(host, playbook):
    assert "report" in STATE, "dr.yml did not recover the server"
    run = playbook(playbook="dr.yml", extra_vars={"dr_overwrite_live_data": True, "dr_target_time": STATE["target"]})
    assert run.rc == 0, run
    marks = host.check_output(f"{PSQL} -c 'SELECT name FROM dr_marks ORDER BY name'").split()
    assert marks == ["before-target"], f"restored to {STATE['target']}: {marks}"
    # What the server held is moved aside, not deleted.
    assert host.check_output(f"ls -d {VOLUMES['postgres_data']}.before-dr-* | wc -l") == "1"
    assert dr.dataset_counts(SERVER) == STATE["dataset"]
    assert edge("/api/health").status == 200
    report = dr.dr_report(SERVER)
    print(f"dr.yml over live data to {STATE['target']}: restore phase {report['restore_seconds']} s, {report['total_seconds']} s in all")
