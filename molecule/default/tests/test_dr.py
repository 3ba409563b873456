"""dr.yml (issue 11): the server is lost at an arbitrary moment while a writer
inserts a timestamped row every second; a new server with the same name
(its off-site bucket kept: harness/server.sh create --keep-offsite) is
recovered by dr.yml from the off-site repositories alone. Checked: the
newest surviving row against the moment of loss (RPO), the realistic
dataset's tables against the manifest (dr.yml compares every table at the
manifest's restore point; here the counts again after the replay), an
upload and the queue's jobs, health through nginx from outside, a rerun
with nothing changed, and the refusal to recover over live data.

The last part: the server it leaves is the recovered one (Molecule then
destroys it). CONNECT_DR_DATASET=programs,organizations,matches sizes the
dataset (default: the issue's 150000,20000,500000)."""

import json
import os
import random
import subprocess
import time
from datetime import datetime, timezone

from conftest import CONTAINER, CONTRACT, DATABASE, PORT, PROJECT, SERVER, VOLUMES, edge, role_defaults, wait_healthy

PG = CONTAINER["postgres"]
QUEUE = CONTAINER["redis-queue"]
SIZES = [int(n) for n in os.environ.get("CONNECT_DR_DATASET", "150000,20000,500000").split(",")]
PSQL = f"docker exec -i -u postgres {PG} psql -X -At -v ON_ERROR_STOP=1 -d {DATABASE}"
HARNESS = PROJECT / "harness" / "server.sh"
# The ports molecule/default/create.yml publishes (another server's: CONNECT_TEST_PUBLISH).
PORTS = [
    arg for spec in os.environ.get("CONNECT_TEST_PUBLISH", "127.0.0.1:18080:80,127.0.0.1:18443:443").split(",") for arg in ("-p", spec)
]
WRITER = "CREATE TABLE IF NOT EXISTS dr_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());"
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


def counts(host) -> dict:
    out = host.check_output(
        f"{PSQL} -c \"SELECT 'programs=' || count(*) FROM dataset.funding_programs UNION ALL "
        f"SELECT 'organizations=' || count(*) FROM dataset.organizations UNION ALL SELECT 'matches=' || count(*) FROM dataset.matches\""
    )
    return dict(line.split("=") for line in out.splitlines())


def test_dr_refuses_a_server_with_live_data(playbook):
    run = playbook(playbook="dr.yml")
    assert run.rc != 0, run
    assert "holds a PostgreSQL cluster" in run.flat and "dr_overwrite_live_data=true" in run.flat, run
    assert run.recap["changed"] == 0, run


def test_the_server_is_lost_while_a_writer_inserts_every_second(host):
    programs, organizations, matches = SIZES
    started = time.monotonic()
    # The dataset goes in from this machine's copy of the script (standard input through docker exec).
    with open(PROJECT / "benchmarks" / "dataset.sql", "rb") as sql:
        subprocess.run(
            [
                "docker",
                "exec",
                "-i",
                SERVER,
                "sh",
                "-c",
                f"{PSQL} -v programs={programs} -v organizations={organizations} -v matches={matches}",
            ],
            stdin=sql,
            check=True,
            capture_output=True,
            timeout=900,
        )
    STATE["dataset"] = counts(host)
    print(f"dataset loaded in {time.monotonic() - started:.1f} s: {STATE['dataset']}")
    host.check_output(f"{PSQL} -c '{WRITER}'")
    host.check_output(f"echo dr-proof-{SERVER} > {VOLUMES['uploads']}/{UPLOAD}")
    queue_cli(host, "rpush", "dr:jobs", "job-1", "job-2", "job-3")
    # The nightly jobs, now: a full backup with its manifest, the uploads, the queue.
    for job in ("pg-full", "files-uploads", "files-queue"):
        begun = time.monotonic()
        host.check_output(f"systemctl start connect-backup@{job}.service")
        record = json.loads(host.file(f"{VOLUMES['backups']}/status/{job}.json").content_string)
        assert record["result"] == "ok", record
        print(f"{job}: {time.monotonic() - begun:.1f} s")
    # The writer lives on the server and dies with it.
    host.check_output(
        f"docker exec -d -u postgres {PG} sh -c "
        f"'while :; do psql -X -q -d {DATABASE} -c \"INSERT INTO dr_probe DEFAULT VALUES\"; sleep 1; done'"
    )
    time.sleep(random.uniform(20, 50))
    newest = host.check_output(f'{PSQL} -c "SELECT extract(epoch FROM max(at)) FROM dr_probe"')
    STATE["lost_at"] = time.time()
    subprocess.run(["bash", str(HARNESS), "destroy", SERVER], check=True, capture_output=True, timeout=300)
    print(
        f"server destroyed at {datetime.fromtimestamp(STATE['lost_at'], timezone.utc).isoformat()} "
        f"(newest row {STATE['lost_at'] - float(newest):.1f} s before)"
    )


def test_dr_recovers_a_new_server_from_the_offsite_repositories(host, playbook):
    assert "lost_at" in STATE, "the loss test did not run"
    subprocess.run(["bash", str(HARNESS), "create", SERVER, "--keep-offsite", *PORTS], check=True, capture_output=True, timeout=300)
    begun = time.monotonic()
    run = playbook(playbook="dr.yml")
    STATE["rto"] = time.monotonic() - begun
    assert run.rc == 0, run
    report = json.loads(host.file("/opt/connect/.dr_restored.json").content_string)
    STATE["report"] = report
    assert report["manifest"]["result"] == "ok", report
    newest = float(host.check_output(f'{PSQL} -c "SELECT extract(epoch FROM max(at)) FROM dr_probe"'))
    rpo = STATE["lost_at"] - newest
    print(
        f"RPO {rpo:.1f} s (newest surviving row before the loss); RTO {STATE['rto']:.0f} s from a bare server to healthy "
        f"through nginx; restore phase {report['restore_seconds']} s; newest restored transaction {report['newest_transaction']}"
    )
    assert rpo <= 60, f"the newest surviving row is {rpo:.1f} s older than the loss: more than 60 s lost"


def test_the_recovered_server_serves_the_data_it_had(host):
    assert "report" in STATE, "dr.yml did not recover the server"
    assert counts(host) == STATE["dataset"]
    assert host.file(f"{VOLUMES['uploads']}/{UPLOAD}").content_string.strip() == f"dr-proof-{SERVER}"
    assert queue_cli(host, "lrange", "dr:jobs", "0", "-1").split() == ["job-1", "job-2", "job-3"]
    wait_healthy(host, PG)
    assert edge("/api/health").status == 200


def test_a_rerun_of_dr_changes_nothing(playbook):
    assert "report" in STATE, "dr.yml did not recover the server"
    run = playbook(playbook="dr.yml")
    assert run.rc == 0 and run.recap["changed"] == 0, run
