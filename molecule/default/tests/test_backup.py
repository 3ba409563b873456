"""PostgreSQL's continuous backup (issue 11): WAL archived through pgBackRest
within the archive timeout, a full backup in the repository, the repository
encrypted and private, and a restore of the latest backup plus WAL into a
scratch container that holds a row written just before."""

import json
import shlex
import time
import uuid

from conftest import CONTAINER, CONTRACT, DATABASE, VOLUMES, role_defaults

PG = CONTAINER["postgres"]
DEFAULTS = role_defaults("postgres")
STANZA = DEFAULTS["postgres_backup_stanza"]
REPO = f"{VOLUMES['backups']}/pgbackrest"
CONFIG_DIR = f"{CONTRACT['compose_stack_root']}/config/pgbackrest"
PROBE_TABLE = "CREATE TABLE IF NOT EXISTS backup_probe (id serial PRIMARY KEY, note text, at timestamptz DEFAULT now())"
PSQL = f"docker exec -i -u postgres {PG} psql -X -At -v ON_ERROR_STOP=1"
PGBACKREST = f"docker exec -u postgres {PG} pgbackrest --stanza={STANZA}"


def info(host) -> dict:
    return json.loads(host.check_output(f"{PGBACKREST} --output=json info"))[0]


def wait_archived(host, segment: str, timeout: int = 30) -> float:
    """Seconds until the repository's newest archived WAL is ``segment`` or later."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        archives = info(host)["archive"]
        if archives and archives[0]["max"] and archives[0]["max"] >= segment:
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"WAL {segment} not in the repository within {timeout} s: {info(host)['archive']}")


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
    print(f"WAL {segment} in the repository {seconds:.1f} s after the switch")
    failed = host.check_output(f'{PSQL} -c "SELECT coalesce(last_failed_time < last_archived_time, true) FROM pg_stat_archiver"')
    assert failed == "t", "the last archive attempt failed"


def test_the_repository_has_a_full_backup_and_passes_check(host):
    stanza = info(host)
    assert stanza["status"]["code"] == 0, stanza["status"]
    assert [b["type"] for b in stanza["backup"] if b["database"]["repo-key"] == 1][:1] == ["full"], stanza["backup"]
    assert host.run(f"{PGBACKREST} check").rc == 0


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


def test_the_latest_backup_and_wal_restore_into_a_scratch_container(host):
    note = f"restore-{uuid.uuid4().hex[:8]}"
    host.check_output(f"{PSQL} -d {DATABASE} -c '{PROBE_TABLE}'")
    host.check_output(f"{PSQL} -d {DATABASE} -c \"INSERT INTO backup_probe (note) VALUES ('{note}')\"")
    wait_archived(host, host.check_output(f"{PSQL} -c 'SELECT pg_walfile_name(pg_switch_wal())'"))
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {PG}")
    # The production repository and configuration, read-only; the restored
    # cluster lives and dies in the scratch container (no network).
    script = (
        "set -e; "
        f"pgbackrest --stanza={STANZA} --pg1-path=/tmp/restore --repo=1 restore; "
        "postgres -D /tmp/restore -c listen_addresses= -c unix_socket_directories=/tmp -c archive_mode=off "
        "-c config_file=/tmp/restore/postgresql.conf -c hba_file=/tmp/restore/pg_hba.conf >/tmp/pg.log 2>&1 & "
        "for i in $(seq 120); do "
        "  [ \"$(psql -X -At -h /tmp -U postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)\" = f ] && break; sleep 0.5; "
        "done; "
        f"psql -X -At -h /tmp -U postgres -d {DATABASE} -c \"SELECT count(*) FROM backup_probe WHERE note = '{note}'\""
    )
    started = time.monotonic()
    found = host.run(
        f"docker run --rm --network none --user 999:999 --entrypoint bash "
        f"-v {REPO}:/var/lib/pgbackrest:ro -v {CONFIG_DIR}:/etc/pgbackrest:ro "
        f"--tmpfs /var/spool/pgbackrest:uid=999,gid=999 --tmpfs /var/log/pgbackrest:uid=999,gid=999 "
        f"{image} -c {shlex.quote(script)}"
    )
    print(f"restore of the latest backup plus WAL into a scratch container: {time.monotonic() - started:.1f} s")
    assert found.rc == 0, found.stderr
    assert found.stdout.strip().splitlines()[-1] == "1", found.stdout
    host.check_output(f"{PSQL} -d {DATABASE} -c 'DROP TABLE backup_probe'")
