"""The morning checklist's verdicts (plugins/module_utils/_status.py) on plain facts."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.connect.platform.plugins.module_utils._status import evaluate, table

NOW = 1_764_500_000.0
GIB = 1024**3


def container(**changes):
    base = {
        "state": "running",
        "health": "healthy",
        "restarts": 0,
        "started": NOW - 3 * 86400,
        "cpus": 0.5,
        "memory": 2 * GIB,
        "cpu_percent": 3.0,
        "mem_bytes": 0.5 * GIB,
    }
    return {**base, **changes}


HEALTHY = {
    "now": NOW,
    "apps": ["connect_app1", "connect_app2"],
    "containers": {
        "connect_postgres": container(),
        "connect_app1": container(release="20261130-120000-abc1234"),
        "connect_app2": container(release="20261130-120000-abc1234"),
        "connect_scraper": container(health=""),
    },
    "disks": {"stack": {"path": "/opt/connect", "used": 40 * GIB, "total": 100 * GIB}},
    "scraper": {"jobs": 12, "errors": 0, "since_hours": 12},
    "queue": {"depth": 3, "failed": 0},
    "backups": {"pg-diff": {"result": "ok", "time": NOW - 5 * 3600, "error": None}},
    "pg_backups": {"1": NOW - 5 * 3600, "2": NOW - 5 * 3600},
    "archiver": {"failing": False, "last_archived_age": 20, "pending_age": None},
    "certificate_days": 80.0,
}


def facts(**changes):
    found = copy.deepcopy(HEALTHY)
    found.update(changes)
    return found


def test_a_healthy_server_has_rows_and_no_finding():
    rows, findings = evaluate(facts())
    assert findings == []
    text = "\n".join(table(rows))
    assert "connect_app1" in text and "release 20261130-120000-abc1234" in text and "up 3 d" in text
    assert "mem 512.0 MiB / 2.0 GiB (25 %)" in text and "cpu 3 % of 0.5" in text
    assert "40 % of 100.0 GiB used (/opt/connect)" in text
    assert "12 jobs done, 0 errors logged" in text and "3 waiting, 0 failed" in text
    assert "ok 5 h ago" in text and "80 days left" in text
    assert {"section": "backups", "item": "PostgreSQL repo2", "value": "newest backup 5 h ago"} in rows


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"containers": {"connect_scraper": container(state="exited")}}, "connect_scraper is exited: read `docker logs --tail 50"),
        ({"containers": {"connect_app1": container(state="exited", release="20261130-120000-abc1234")}}, "through the rolling restart"),
        ({"containers": {"connect_postgres": None}}, "connect_postgres does not exist: run site.yml"),
        ({"containers": {"connect_postgres": container(health="unhealthy")}}, "connect_postgres is unhealthy"),
        ({"containers": {"connect_postgres": container(restarts=5)}}, "restarted 5 times"),
        ({"containers": {"connect_postgres": container(mem_bytes=1.9 * GIB)}}, "uses 95 % of its memory limit"),
        (
            {"containers": {"connect_app1": container(release="r1"), "connect_app2": container(release="r2")}},
            "serve different releases (r1, r2)",
        ),
        ({"disks": {"backups": {"path": "/opt/connect/backups", "used": 85, "total": 100}}}, "/opt/connect/backups is 85 % full"),
        ({"scraper": {"jobs": 0, "errors": 4, "since_hours": 12}}, "the scraper logged 4 errors in the last 12 h"),
        ({"queue": {"depth": 5000, "failed": 0}}, "5000 jobs wait in the queue"),
        ({"queue": {"depth": 0, "failed": 2}}, "2 scraper jobs failed after all retries"),
        ({"pg_backups": {"1": NOW - 3600, "2": NOW - 30 * 3600}}, "no PostgreSQL backup in repository 2 for 30 h"),
        ({"pg_backups": {"1": NOW - 3600, "2": None}}, "no PostgreSQL backup in repository 2 at all"),
        (
            {
                "backups": {
                    "pg-diff": {"result": "ok", "time": NOW, "error": None},
                    "files-queue": {"result": "failed", "time": NOW - 60, "error": "NOAUTH"},
                }
            },
            "backup job files-queue failed 60 s ago (NOAUTH)",
        ),
        (
            {"maintenance": {"logs": {"result": "failed", "time": NOW - 120, "error": "error: bad line"}}},
            "maintenance job logs failed 2 min ago (error: bad line): `journalctl -u connect-maintenance@logs`",
        ),
        ({"archiver": {"failing": True, "last_archived_age": 30, "pending_age": 25}}, "WAL archiving fails"),
        ({"archiver": {"failing": False, "last_archived_age": 600, "pending_age": 600}}, "a completed segment has waited 10 min"),
        ({"certificate_days": 12.2}, "the certificate expires in 12 days"),
    ],
)
def test_each_problem_is_one_finding_that_says_what_to_do(changes, expected):
    found = facts()
    for key, value in changes.items():
        if key == "containers":
            found["containers"].update(value)
        else:
            found[key] = value
    findings = evaluate(found)[1]
    assert len(findings) == 1 and expected in findings[0], findings


def test_an_idle_database_is_no_archiving_lag():
    # Nothing written since the last segment: nothing waits, however old the last one is.
    findings = evaluate(facts(archiver={"failing": False, "last_archived_age": 86400, "pending_age": None}))[1]
    assert findings == []


def test_a_segment_that_just_completed_after_a_quiet_day_is_no_lag():
    # The last archive is a day old, but the segment waiting for archive_command has waited 2 s.
    findings = evaluate(facts(archiver={"failing": False, "last_archived_age": 86400, "pending_age": 2}))[1]
    assert findings == []


def test_a_segment_waiting_just_over_the_limit_is_a_lag():
    limit = {"wal_max_lag_seconds": 300}
    assert evaluate(facts(archiver={"failing": False, "last_archived_age": 5, "pending_age": 300}), limit)[1] == []
    late = evaluate(facts(archiver={"failing": False, "last_archived_age": 5, "pending_age": 301}), limit)[1]
    assert len(late) == 1 and "WAL archiving lags" in late[0], late


def test_thresholds_are_the_callers():
    findings = evaluate(facts(certificate_days=50.0), {"certificate_min_days": 60})[1]
    assert findings and "expires in 50 days" in findings[0]
    findings = evaluate(facts(), {"disk_percent": 30})[1]
    assert findings and "/opt/connect is 40 % full" in findings[0]


def test_parts_not_gathered_are_left_out():
    found = facts()
    for key in ("scraper", "queue", "backups", "pg_backups", "archiver", "certificate_days"):
        del found[key]
    rows, findings = evaluate(found)
    assert findings == []
    assert {r["section"] for r in rows} == {"containers", "disk", "alerts"}


def test_firing_alerts_are_listed_and_a_critical_one_is_a_finding():
    alerts = [
        {"name": "AppInstanceDown", "severity": "critical", "target": "app1", "summary": "app1 down", "action": "Restart it."},
        {"name": "HostCpuHigh", "severity": "warning", "target": "", "summary": "busy", "action": "Consider app3."},
    ]
    rows, findings = evaluate(facts(alerts=alerts))
    firing = [r["value"] for r in rows if r["section"] == "alerts"]
    assert firing == ["AppInstanceDown (critical, app1), HostCpuHigh (warning)"]
    assert findings == ["alert AppInstanceDown on app1 is firing: Restart it."]


def test_no_alert_reads_none_and_an_unreadable_alertmanager_reads_na():
    rows, findings = evaluate(facts(alerts=[]))
    assert [r["value"] for r in rows if r["section"] == "alerts"] == ["none"] and findings == []
    rows, findings = evaluate(facts(alerts=None))
    assert [r["value"] for r in rows if r["section"] == "alerts"] == ["n/a (Alertmanager not readable)"] and findings == []
