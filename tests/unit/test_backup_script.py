"""The backup role's job script (roles/backup/templates/connect-backup.py.j2),
rendered with plain Jinja2 over fake values and imported: its pure logic
(times, the plan of each job, the manifest comparison, the queue's restore
into a directory) without docker, restic or PostgreSQL. The Molecule parts
`backup` and `dr` run it for real."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from script_template import render_script

JOBS = ["pg-full", "pg-diff", "pg-check", "pg-verify", "files-uploads", "files-queue", "drill", "report", "pre-deploy"]
TEMPLATE = Path(__file__).resolve().parents[2] / "roles" / "backup" / "templates" / "connect-backup.py.j2"


def render(tmp_path: Path, offsite: bool = True):
    staging = tmp_path / "staging"
    values = {
        "ansible_managed": "test",
        "__backup_jobs": dict.fromkeys(JOBS, "x"),
        "backup_log": str(tmp_path / "backup.log"),
        "backup_status_dir": str(tmp_path / "status"),
        "__backup_staging": str(staging),
        "__backup_manifest": str(staging / "pg-manifest.json"),
        "postgres_backup": {
            "container": "connect_postgres",
            "uid": 999,
            "stanza": "connect",
            "repos": [1, 2] if offsite else [1],
            "mounts": {"/opt/connect/config/pgbackrest": "/etc/pgbackrest", "/opt/connect/backups/pgbackrest": "/var/lib/pgbackrest"},
            "spool": "/var/spool/pgbackrest",
            "log": "/var/log/pgbackrest",
            "hosts": {"offsite-s3": "10.0.0.1"} if offsite else {},
            "retention_days": {"1": 14, "2": 90} if offsite else {"1": 90},
            "offsite": {"retention_days": 90} if offsite else {},
        },
        "compose_stack_database": {"name": "connect"},
        "compose_stack_volumes": {"backups": str(tmp_path / "backups")},
        "compose_stack_predeploy_dumps": {"dir": str(tmp_path / "backups" / "postgres"), "prefix": "pre-deploy-", "suffix": ".dump"},
        "backup_predeploy_retention_days": 14,
        "backup_manifest_lock_timeout": "60s",
        "__backup_offsite": {"region": "kr", "uri_style": "path", "ca_file": "/ca.pem", "retention_days": 90} if offsite else {},
        "backup_uploads_retention_days": 90,
        "redis_queue_snapshot": {
            "container": "connect_redis_queue",
            "port": 6380,
            "user": "ops",
            "password_file": str(tmp_path / "redis_admin_password"),
            "data": str(tmp_path / "redis-queue"),
            "aof_dir": "appendonlydir",
            "uid": 999,
        },
        "backup_restic_repository": str(tmp_path / "restic"),
        "__backup_offsite_repository": "s3:https://s3.example:443/bucket/restic",
        "__backup_offsite_ca": "/opt/connect/config/backup/offsite-ca.pem",
        "__backup_restic_password_file": str(tmp_path / "restic_password"),
        "__backup_offsite_env_file": str(tmp_path / "backup_offsite.env"),
        "__backup_file_classes": {
            "files-uploads": {"tag": "uploads", "paths": [str(tmp_path / "uploads")], "exclude": [], "days": 90},
            "files-queue": {"tag": "redis-queue", "paths": [str(staging / "redis-queue.rdb")], "exclude": [], "days": 30},
            "files-financial": {
                "tag": "financial",
                "tables": ["payments"],
                "recipients": ["age1x"],
                "paths": [str(staging / "financial.dump.age")],
                "exclude": [],
                "days": 2555,
            },
        },
    }
    return render_script(TEMPLATE, values, tmp_path / "connect_backup.py")


@pytest.fixture
def script(tmp_path):
    return render(tmp_path)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-11-30T02:15:00.123456789+09:00", "2026-11-29T17:15:00.123456+00:00"),
        ("2026-11-30T02:15:00Z", "2026-11-30T02:15:00+00:00"),
        ("2026-11-30 14:05:00+09", "2026-11-30T05:05:00+00:00"),
        ("2026-11-30T14:05:00-0130", "2026-11-30T15:35:00+00:00"),
        ("2026-11-30 14:05+09:00", "2026-11-30T05:05:00+00:00"),
    ],
)
def test_times_with_any_zone_and_precision_compare_in_utc(script, text, iso):
    from datetime import datetime, timezone

    assert script.parse_time(text).astimezone(timezone.utc) == datetime.fromisoformat(iso)


@pytest.mark.parametrize("text", ["yesterday", "2026-11-30 14:05:00"])
def test_a_time_without_a_zone_is_refused_with_an_example(script, text):
    with pytest.raises(SystemExit, match="not a time with its zone.*e.g. 2026-11-30T02:15:00"):
        script.parse_time(text)


def test_a_full_backup_archives_its_manifest_before_keeping_it(script):
    plan = [(repo, action if callable(action) else " ".join(action[:8])) for repo, action in script.steps("pg-full")]
    names = [step[0] for step in plan]
    assert names[:2] == [1, 2] and names[2:4] == ["manifest", "archived"], names
    assert "check" in plan[3][1]
    # Then the manifest in each restic repository: backup, then forget by age.
    assert names[4:] == ["local", "local", "offsite", "offsite"]
    assert [(a.tag, a.days) for a in (step[1] for step in plan[4:]) if callable(a)] == [("pg-manifest", 90), ("pg-manifest", 90)]


def test_each_file_class_goes_to_both_repositories_and_is_pruned_by_its_own_period(script, monkeypatch):
    plan = script.steps("files-queue")
    assert plan[0][0] == "snapshot" and callable(plan[0][1])
    assert plan[-1][0] == "cleanup"  # the snapshot file does not stay beside the repositories
    forgets = [step[1] for step in plan[1:-1] if callable(step[1])]
    assert [(f.tag, f.days) for f in forgets] == [("redis-queue", 30), ("redis-queue", 30)]
    offsite = [action for repo, action in plan if repo == "offsite" and not callable(action)][0]
    assert "--cacert" in offsite and "s3.bucket-lookup=path" in offsite
    # forget removes, by the clock, what is older than the period (not counted from the newest
    # snapshot, as restic's --keep-within does) and counts it.
    ran = []
    now = time.time()

    def stamp(days):
        return time.strftime("%Y-%m-%dT%H:%M:%S.123456789+00:00", time.gmtime(now - days * 86400))

    listing = json.dumps([{"id": "old", "time": stamp(31)}, {"id": "older", "time": stamp(400)}, {"id": "new", "time": stamp(29)}])
    monkeypatch.setattr(
        script, "run", lambda command, **kw: ran.append(command[3:]) or (0, None, listing if "snapshots" in command else "")
    )
    assert forgets[0]() == (0, None, {"tag": "redis-queue", "removed": 2})
    assert ran[1] == ["forget", "--prune", "old", "older"]
    ran.clear()
    listing = json.dumps([{"id": "new", "time": stamp(29)}])
    assert forgets[0]() == (0, None, {"tag": "redis-queue", "removed": 0})
    assert [c[0] for c in ran] == ["snapshots"]


def test_a_table_class_exports_then_backs_up_then_removes_its_export(script):
    assert [step[0] for step in script.steps("files-financial")] == ["export", "local", "local", "offsite", "offsite", "cleanup"]


def test_without_an_offsite_store_only_the_local_repository(tmp_path):
    script = render(tmp_path, offsite=False)
    assert {step[0] for step in script.steps("files-uploads")} == {"local"}
    assert [step[0] for step in script.steps("pg-full")][:2] == [1, "manifest"]


def test_an_unknown_job_fails_and_names_the_jobs(script, capsys):
    assert script.backup("pg-nightly") == 1
    assert "unknown job 'pg-nightly': use one of pg-full" in capsys.readouterr().out


def test_a_failed_snapshot_stops_the_job_before_anything_is_backed_up(script, monkeypatch):
    ran = []
    monkeypatch.setattr(script, "snapshot_queue", lambda: (1, "NOAUTH"))
    monkeypatch.setattr(script, "run", lambda command, **kw: ran.append(command) or (0, None, ""))
    assert script.backup("files-queue") == 1
    assert ran == []
    record = json.loads(Path(script.STATUS_DIR, "files-queue.json").read_text())
    assert record["result"] == "failed" and record["steps"][0]["error"] == "NOAUTH"


def test_a_restore_that_differs_from_its_manifest_names_each_table(script, tmp_path, monkeypatch, capsys):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "restore_point": "rp",
                "tables": {
                    "public.items": {"rows": 3, "checksum": "7"},
                    "public.kept": {"rows": 1, "checksum": "1"},
                    "public.gone": {"rows": 1, "checksum": "2"},
                },
            }
        )
    )
    found = {"public.items": {"rows": 2, "checksum": "5"}, "public.kept": {"rows": 1, "checksum": "1"}}
    monkeypatch.setattr(script, "psql_tables", lambda sql, container, variables: ({"tables": found}, None))
    assert script.verify_manifest([str(manifest)]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["differences"] == ["public.gone: missing", "public.items: 2 rows (checksum 5), the manifest has 3 (7)"]
    found["public.items"] = {"rows": 3, "checksum": "7"}
    found["public.gone"] = {"rows": 1, "checksum": "2"}
    assert script.verify_manifest([str(manifest)]) == 0


def fake_restic(snapshots, dumped: bytes):
    def run(command, **kwargs):
        if "snapshots" in command:
            return subprocess.CompletedProcess(command, 0, json.dumps(snapshots), "")
        if "dump" in command and kwargs.get("stdout") is not None:
            kwargs["stdout"].write(dumped)
            return subprocess.CompletedProcess(command, 0, None, b"")
        raise AssertionError(command)

    return run


SNAPSHOTS = [
    {"id": "a" * 64, "short_id": "aaaa", "time": "2026-11-28T02:40:01.5+09:00"},
    {"id": "b" * 64, "short_id": "bbbb", "time": "2026-11-29T02:40:01.5+09:00"},
]


def test_the_queue_restores_as_the_base_of_an_append_only_directory(script, monkeypatch, capsys):
    monkeypatch.setattr(script.subprocess, "run", fake_restic(SNAPSHOTS, b"REDIS0010..."))
    monkeypatch.setattr(script.os, "chown", lambda *a: None)
    assert script.restore(["redis-queue", "--before", "2026-11-28T12:00:00+09:00"]) == 0
    assert json.loads(capsys.readouterr().out)["snapshot"] == "aaaa"
    aof = Path(script.QUEUE["data"], "appendonlydir")
    assert (aof / "appendonly.aof.1.base.rdb").read_bytes() == b"REDIS0010..."
    assert (aof / "appendonly.aof.1.incr.aof").read_bytes() == b""
    assert (aof / "appendonly.aof.manifest").read_text().splitlines() == [
        "file appendonly.aof.1.base.rdb seq 1 type b",
        "file appendonly.aof.1.incr.aof seq 1 type i",
    ]
    # A queue that holds data is never overwritten.
    with pytest.raises(SystemExit, match="exists: the queue holds data"):
        script.restore(["redis-queue"])


def test_no_snapshot_before_the_time_is_an_error_not_the_newest(script, monkeypatch):
    monkeypatch.setattr(script.subprocess, "run", fake_restic(SNAPSHOTS, b""))
    with pytest.raises(SystemExit, match="no uploads snapshot in the offsite repository at or before"):
        script.restore(["uploads", "--before", "2026-11-01T00:00:00Z"])


def test_the_drill_restores_compares_and_always_removes_its_scratch_project(script, monkeypatch):
    names = [step[0] for step in script.steps("drill")]
    assert names == ["manifest", "postgres", "replay", "compare", "uploads", "queue", "cleanup"]
    removed = []
    plan = script.steps("drill")
    plan[0] = ("manifest", lambda: (1, "no pg-manifest snapshot"))
    plan[-1] = ("cleanup", lambda: removed.append(True) or (0, None))
    monkeypatch.setattr(script, "steps", lambda job: plan)
    assert script.backup("drill") == 1
    assert removed == [True]


def test_the_drills_postgres_reaches_only_the_offsite_store_and_matches_the_primarys_limits(script):
    drill = script.Drill()
    script.os.makedirs(script.DRILL_DIR, exist_ok=True)
    drill.compose_file("registry/postgres:15", {"max_connections": "200"})
    project = json.loads(Path(script.DRILL_DIR, "compose.json").read_text())
    service = project["services"]["postgres"]
    assert project["name"] == "connect-drill" and service["container_name"] == "connect-drill-postgres"
    assert service["networks"] == ["egress"] and project["networks"] == {"egress": {"external": True}}
    assert "max_connections=200" in service["command"] and "archive_mode=off" in service["command"]
    assert "/opt/connect/config/pgbackrest:/etc/pgbackrest:ro" in service["volumes"]
    assert service["tmpfs"][0] == "/var/spool/pgbackrest:uid=999,gid=999,mode=0700"
    assert service["extra_hosts"] == ["offsite-s3:10.0.0.1"]


def test_without_an_offsite_store_the_drills_postgres_has_no_way_out(tmp_path):
    script = render(tmp_path, offsite=False)
    script.os.makedirs(script.DRILL_DIR, exist_ok=True)
    script.Drill().compose_file("postgres:15", {})
    project = json.loads(Path(script.DRILL_DIR, "compose.json").read_text())
    assert project["networks"] == {"default": {"internal": True}}


def test_the_compliance_report_lists_what_is_kept_for_how_long_and_what_was_deleted(script, monkeypatch):
    snapshots = [
        {"time": "2026-09-01T02:30:00.1+09:00", "tags": ["uploads"]},
        {"time": "2026-11-29T02:30:00.1+09:00", "tags": ["uploads"]},
        {"time": "2026-11-29T02:40:00.1+09:00", "tags": ["redis-queue"]},
    ]
    info = [{"backup": [{"database": {"repo-key": 1}, "timestamp": {"start": 1764500000}}]}]

    def run(command, **kwargs):
        if "snapshots" in command:
            return 0, None, json.dumps(snapshots)
        if "info" in command:
            return 0, None, json.dumps(info)
        raise AssertionError(command)

    monkeypatch.setattr(script, "run", run)
    now = script.datetime.now(script.timezone.utc).isoformat(timespec="seconds")
    with open(script.LOG, "w") as log:
        log.write(json.dumps({"time": "2020-01-01T00:00:00+00:00", "steps": [{"repo": "local", "tag": "uploads", "removed": 9}]}) + "\n")
        log.write(json.dumps({"time": now, "steps": [{"repo": "local", "tag": "uploads", "removed": 3, "rc": 0}]}) + "\n")
        log.write("not json\n")
    rc, error, extra = script.compliance_report()
    assert (rc, error, extra["deleted"]) == (0, None, 3)  # the 2020 line is before the period
    report = json.loads(Path(extra["report"]).read_text())
    uploads = report["classes"]["uploads"]
    assert uploads["kept_days"] == 90
    assert uploads["repositories"]["local"] == {
        "snapshots": 2,
        "oldest": "2026-09-01T02:30:00.1+09:00",
        "newest": "2026-11-29T02:30:00.1+09:00",
        "deleted": 3,
    }
    assert report["classes"]["redis-queue"]["kept_days"] == 30
    assert report["postgres"]["1"]["kept_days"] == 14 and report["postgres"]["1"]["backups"] == 1
    assert report["postgres"].get("2") is None
    # No release yet: the pre-deploy dumps' class is there, empty.
    assert report["classes"]["pre-deploy"] == {
        "kept_days": 14,
        "repositories": {"local": {"snapshots": 0, "oldest": None, "newest": None, "deleted": 0}},
    }


def _dump(script, name: str, days_old: float) -> Path:
    path = Path(script.PREDEPLOY["dir"], name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PGDMP")
    when = time.time() - days_old * 86400
    script.os.utime(path, (when, when))
    return path


def test_pre_deploy_dumps_past_their_period_are_deleted_by_the_clock_and_counted(script):
    old = _dump(script, "pre-deploy-20261101T000000-aaaaaaa.dump", 15)
    recent = _dump(script, "pre-deploy-20261201T000000-bbbbbbb.dump", 13)
    other = _dump(script, "connect_db_20261101.dump", 40)  # not a pre-deploy dump: not this job's
    assert script.steps("pre-deploy")[0][0] == "local"
    rc, error, extra = script.steps("pre-deploy")[0][1]()
    assert (rc, error, extra) == (0, None, {"tag": "pre-deploy", "removed": 1})
    assert not old.exists() and recent.exists() and other.exists()
    # A second run deletes nothing; no directory (no release yet) is no error.
    assert script.expire_predeploy_dumps() == (0, None, {"tag": "pre-deploy", "removed": 0})
    for path in (recent, other):
        path.unlink()
    Path(script.PREDEPLOY["dir"]).rmdir()
    assert script.expire_predeploy_dumps() == (0, None, {"tag": "pre-deploy", "removed": 0})


def test_the_report_counts_the_pre_deploy_dumps_and_their_deletions(script, monkeypatch):
    _dump(script, "pre-deploy-20261125T000000-aaaaaaa.dump", 10)
    _dump(script, "pre-deploy-20261203T000000-bbbbbbb.dump", 2)
    monkeypatch.setattr(script, "run", lambda command, **kwargs: (0, None, "[]"))
    now = script.datetime.now(script.timezone.utc).isoformat(timespec="seconds")
    with open(script.LOG, "w") as log:
        log.write(json.dumps({"time": now, "job": "pre-deploy", "steps": [{"repo": "local", "tag": "pre-deploy", "removed": 2, "rc": 0}]}))
    rc, error, extra = script.compliance_report()
    assert (rc, error, extra["deleted"]) == (0, None, 2)
    dumps = json.loads(Path(extra["report"]).read_text())["classes"]["pre-deploy"]
    assert dumps["kept_days"] == 14
    assert dumps["repositories"]["local"]["snapshots"] == 2 and dumps["repositories"]["local"]["deleted"] == 2
    assert dumps["repositories"]["local"]["oldest"] < dumps["repositories"]["local"]["newest"]


def test_verify_fails_on_the_report_pgbackrest_exits_0_with(script, monkeypatch):
    report = "stanza: connect\nstatus: error\n  backup: 20261130-153934F, status: invalid\n    checksum invalid: 1\n"
    monkeypatch.setattr(script, "run", lambda command, **kw: (0, None, report))
    step = script.steps("pg-verify")[0][1]
    rc, error = step()
    assert rc == 1 and "verify found damage" in error and "checksum invalid: 1" in error
    monkeypatch.setattr(script, "run", lambda command, **kw: (0, None, "stanza: connect\nstatus: ok\n"))
    assert step() == (0, None)


def test_a_status_file_remembers_the_last_success_across_a_failure(script, tmp_path):
    status = tmp_path / "job.json"
    assert script.last_success(str(status)) is None  # no file yet
    status.write_text('{"time": "2026-12-01T02:00:00+00:00", "result": "ok"}')
    assert script.last_success(str(status)) == "2026-12-01T02:00:00+00:00"
    status.write_text('{"time": "2026-12-02T02:00:00+00:00", "result": "failed", "last_success": "2026-12-01T02:00:00+00:00"}')
    assert script.last_success(str(status)) == "2026-12-01T02:00:00+00:00"
