"""The weekly maintenance's job script (roles/operations/templates/connect-maintenance.py.j2),
rendered with plain Jinja2 over fake values and imported: which release tags go,
logrotate's report, and what a run records. The Molecule part `maintenance`
runs it for real (docker, logrotate, PostgreSQL, nginx's certificate)."""

import json
from pathlib import Path

import pytest
import yaml
from script_template import render_script

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles" / "operations" / "templates" / "connect-maintenance.py.j2"
PATTERN = yaml.safe_load((ROOT / "roles" / "compose_stack" / "vars" / "main.yml").read_text())["compose_stack_app_release_tag_pattern"]


@pytest.fixture
def script(tmp_path):
    values = {
        "ansible_managed": "test",
        "__operations_maintenance_jobs": dict.fromkeys(["vacuum", "logs", "images", "certificates", "integrity"], "x"),
        "operations_maintenance_vacuum_timeout": "2h",
        "operations_maintenance_log": str(tmp_path / "maintenance.log"),
        "operations_maintenance_status_dir": str(tmp_path / "status"),
        "compose_stack_services": {"postgres": {"container": "connect_postgres"}, "nginx": {"https_port": 443}},
        "compose_stack_app_image_repository": "connect-app",
        "compose_stack_app_releases_kept": 5,
        "compose_stack_app_release_tag_pattern": PATTERN,
        "operations_status_certificate_min_days": 30,
    }
    return render_script(TEMPLATE, values, tmp_path / "connect_maintenance.py")


def release(day: int) -> str:
    return f"202611{day:02d}T020000-abcdef{day % 10}"


def test_the_newest_releases_stay_and_older_ones_go(script):
    images = [(release(day), f"sha256:{day}") for day in range(1, 9)] + [("current", "sha256:8"), ("latest", "sha256:x")]
    assert script.release_removals(images, {"sha256:8"}, 5) == [release(3), release(2), release(1)]


def test_the_image_of_previous_or_of_a_container_never_goes_whatever_its_age(script):
    images = [(release(day), f"sha256:{day}") for day in range(1, 9)]
    # previous is the oldest release; a stopped container still uses the third oldest.
    assert script.release_removals(images, {"sha256:1", "sha256:3"}, 5) == [release(2)]


def test_build_tags_go_unless_their_image_is_kept(script):
    images = [(release(day), f"sha256:{day}") for day in range(1, 4)] + [("build-abcdef1", "sha256:3"), ("build-1234567", "sha256:9")]
    # build-abcdef1 names the newest release's image (kept); build-1234567 an image nothing keeps.
    assert script.release_removals(images, set(), 5) == ["build-1234567"]


def test_fewer_releases_than_kept_removes_nothing_and_other_tags_are_not_releases(script):
    images = [(release(1), "sha256:1"), ("current", "sha256:1"), ("v2", "sha256:2"), ("20261101-abcdef1", "sha256:3")]
    assert script.release_removals(images, set(), 0) == [release(1)]
    assert script.release_removals(images, set(), 5) == []


def test_logrotates_verbose_report_is_counted(script):
    out = """reading config file /etc/logrotate.d/connect-logs
Handling 1 logs
rotating pattern: /opt/connect/logs/*.log  weekly (12 rotations)
considering log /opt/connect/logs/backup.log
  Now: 2026-11-30 04:00
  Last rotated at 2026-11-22 04:00
  log needs rotating
considering log /opt/connect/logs/deploy.log
  log does not need rotating (log has already been rotated)
"""
    assert script.rotated(out) == (2, 1)


def test_integrity_fails_on_a_changed_or_missing_file_but_not_on_one_dpkg_leaves_out(script, monkeypatch):
    class Done:
        returncode = 2
        stdout = ""
        stderr = (
            "debsums: changed file /usr/share/zoneinfo/Pacific/Fiji (from tzdata package)\n"
            "debsums: missing file /usr/share/doc/tzdata/changelog.gz (from tzdata package)\n"
            "debsums: no md5sums for some-package\n"
        )

    monkeypatch.setattr(script.subprocess, "run", lambda *a, **k: Done())
    monkeypatch.setattr(script, "dpkg_excluded", lambda path: path.startswith("/usr/share/doc/"))
    step = script.integrity()[0]
    assert step["rc"] == 1 and step["differing"] == 1 and "Pacific/Fiji" in step["error"], step
    monkeypatch.setattr(script, "dpkg_excluded", lambda path: False)
    assert script.integrity()[0]["differing"] == 2


def test_an_unknown_job_is_refused_with_the_known_ones(script, capsys):
    assert script.main(["vacum"]) == 2
    assert "usage: connect-maintenance vacuum|logs|images|certificates|integrity" in capsys.readouterr().err


def test_a_failed_step_fails_the_run_and_is_recorded_in_the_log_and_the_status_file(script, monkeypatch, tmp_path):
    monkeypatch.setitem(script.JOBS, "logs", lambda: [{"step": "logrotate", "rc": 1, "error": "error: bad line", "rotated": 0}])
    assert script.main(["logs"]) == 1
    line = json.loads((tmp_path / "maintenance.log").read_text().splitlines()[-1])
    status = json.loads((tmp_path / "status" / "logs.json").read_text())
    assert line == status
    assert status["result"] == "failed" and status["steps"][0]["error"] == "error: bad line"
    monkeypatch.setitem(script.JOBS, "logs", lambda: [{"step": "logrotate", "rc": 0, "error": None}])
    assert script.main(["logs"]) == 0
    assert json.loads((tmp_path / "status" / "logs.json").read_text())["steps"] == [{"step": "logrotate", "rc": 0}]
    assert len((tmp_path / "maintenance.log").read_text().splitlines()) == 2


def test_a_job_that_raises_is_a_failed_run_not_a_traceback(script, monkeypatch):
    def broken():
        raise OSError("No such file or directory: 'logrotate'")

    monkeypatch.setitem(script.JOBS, "logs", broken)
    assert script.main(["logs"]) == 1
