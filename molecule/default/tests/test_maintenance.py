"""The weekly maintenance (issue 13): four systemd timers on Sunday early
morning KST, each job run here for real through its unit. VACUUM (ANALYZE)
reaches every table of every database; a due log is rotated; a broken
rotation rule fails the run, which status.yml then names; the served
certificate's days are read; a changed package file fails the integrity check. The image clean-up is proven in the release part,
right before its rollback (rollback.yml still works after it)."""

import json

import pytest
from conftest import CONTAINER, DATABASE, VOLUMES, on_host, role_defaults

DEFAULTS = role_defaults("operations")
JOBS = ("vacuum", "logs", "images", "certificates", "integrity")
STATUS_DIR = on_host(DEFAULTS["operations_maintenance_status_dir"])
PSQL = f"docker exec -u postgres {CONTAINER['postgres']} psql -X -At -v ON_ERROR_STOP=1"
BROKEN_RULE = "/etc/logrotate.d/connect-zz-test-broken"


def run_job(host, job: str):
    """systemctl start of the job's unit (it waits for a oneshot), then its status file."""
    run = host.run(f"systemctl start connect-maintenance@{job}.service")
    status = json.loads(host.check_output(f"cat {STATUS_DIR}/{job}.json"))
    return run.rc, status


@pytest.mark.parametrize("job", JOBS)
def test_each_job_has_an_enabled_timer_on_its_sunday_kst_schedule(host, job):
    shown = dict(
        line.split("=", 1)
        for line in host.check_output(
            f"systemctl show --property=ActiveState,UnitFileState,TimersCalendar connect-maintenance-{job}.timer"
        ).splitlines()
    )
    assert shown["ActiveState"] == "active" and shown["UnitFileState"] == "enabled", shown
    calendar = DEFAULTS[f"operations_maintenance_{job}_calendar"]
    assert calendar.startswith("Sun ") and calendar.endswith(" Asia/Seoul"), calendar
    # systemd's own reading of it: Sunday, in Seoul's time.
    assert "OnCalendar=Sun *-*-* " in shown["TimersCalendar"] and "Asia/Seoul" in shown["TimersCalendar"], shown


def test_no_two_jobs_start_at_the_same_minute_and_all_after_the_nights_backups():
    minutes = [DEFAULTS[f"operations_maintenance_{job}_calendar"].split()[2][:5] for job in JOBS]
    assert len(set(minutes)) == len(JOBS), minutes
    newest_backup = max(role_defaults("backup")[k].split()[-2][:5] for k in ("backup_uploads_calendar", "backup_financial_calendar"))
    assert min(minutes) > newest_backup, (minutes, newest_backup)


def test_vacuum_analyzes_every_table_of_every_database(host):
    rc, status = run_job(host, "vacuum")
    assert rc == 0 and status["result"] == "ok", status
    databases = host.check_output(f"{PSQL} -d postgres -c 'SELECT datname FROM pg_database WHERE datallowconn'").split()
    assert sorted(s["step"] for s in status["steps"]) == sorted(f"vacuum {name}" for name in databases), status
    assert DATABASE in databases
    never = host.check_output(
        f"{PSQL} -d {DATABASE} -c 'SELECT count(*) FROM pg_stat_user_tables WHERE last_vacuum IS NULL OR last_analyze IS NULL'"
    )
    tables = host.check_output(f"{PSQL} -d {DATABASE} -c 'SELECT count(*) FROM pg_stat_user_tables'")
    assert int(tables) > 0 and int(never) == 0, (tables, never)


def test_a_due_log_is_rotated_and_a_broken_rule_fails_the_run_which_status_names(host, playbook):
    log = f"{VOLUMES['logs']}/pgbackrest/maintenance-test.log"
    host.check_output(f"echo 'a line to rotate' > {log} && rm -f {log}.1")
    # A first run records the new log in logrotate's state; the state then says it was last rotated years ago.
    assert run_job(host, "logs")[0] == 0
    state = "/var/lib/logrotate/status"
    host.check_output(f"""sed -i 's|^"{log}" .*|"{log}" 2020-1-5-4:0:0|' {state} && grep -q '"{log}" 2020-' {state}""")
    rc, status = run_job(host, "logs")
    assert rc == 0 and status["result"] == "ok", status
    assert status["steps"][0]["rotated"] >= 1 and status["steps"][0]["considered"] >= 2, status
    assert host.file(f"{log}.1").exists and host.file(log).size == 0
    # The jobs' one-line records are kept whole (the compliance report reads backup.log).
    out = host.check_output("logrotate --debug /etc/logrotate.d/connect-* 2>&1 | grep 'considering log' || true")
    considered = {line.split("considering log ", 1)[1].strip() for line in out.splitlines()}
    records = {f"{VOLUMES['logs']}/{name}" for name in ("backup.log", "deploy.log", "maintenance.log")}
    assert considered and not considered & records, considered

    host.check_output(f"printf '{VOLUMES['logs']}/*.log {{\\n    nonsense-directive\\n}}\\n' > {BROKEN_RULE}")
    try:
        rc, status = run_job(host, "logs")
        assert rc != 0 and status["result"] == "failed" and status["steps"][0]["error"], status
        assert host.run("systemctl is-failed connect-maintenance@logs.service").stdout.strip() == "failed"
        run = playbook(playbook="status.yml")
        assert run.rc != 0 and "maintenance job logs failed" in run.flat and "journalctl -u connect-maintenance@logs" in run.flat, run
    finally:
        host.check_output(f"rm -f {BROKEN_RULE} {log} {log}.1")
    rc, status = run_job(host, "logs")
    assert rc == 0 and status["result"] == "ok", status


def test_the_served_certificate_is_checked(host):
    rc, status = run_job(host, "certificates")
    assert rc == 0 and status["result"] == "ok", status
    served = [s for s in status["steps"] if s["step"] == "served certificate"]
    assert served and 300 < served[0]["days_left"] <= 366, status


def test_a_changed_package_file_fails_the_integrity_check_naming_it(host):
    rc, status = run_job(host, "integrity")
    assert rc == 0 and status["result"] == "ok" and status["steps"][0]["differing"] == 0, status
    # A file of an installed package (tzdata's), changed and then put back.
    victim = "/usr/share/zoneinfo/Pacific/Fiji"
    host.check_output(f"cp -p {victim} /root/fiji.orig && printf x >> {victim}")
    try:
        rc, status = run_job(host, "integrity")
    finally:
        host.check_output(f"cp -p /root/fiji.orig {victim} && rm /root/fiji.orig")
    assert rc != 0 and status["result"] == "failed", status
    assert victim in status["steps"][0]["error"] and status["steps"][0]["differing"] == 1, status


def test_each_run_is_one_json_line_in_the_maintenance_log(host):
    lines = host.check_output(f"cat {VOLUMES['logs']}/maintenance.log").splitlines()
    records = [json.loads(line) for line in lines]
    assert {"vacuum", "logs", "certificates"} <= {r["job"] for r in records}, records
    assert all(r["result"] in ("ok", "failed") and r["time"] for r in records)
