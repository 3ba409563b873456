"""Bad input is refused before anything changes: no server needed.

Each case runs a playbook (site.yml, deploy.yml, rollback.yml) against a
throw-away inventory whose only host cannot be reached (127.0.0.1, port 1),
with production's group_vars, the values production must add (a real
ed25519 key from ssh-keygen, the first image, the BRN key, nginx's names)
and the host's size (so the resource plan needs no facts), plus one bad
value. A case passes when the run fails naming the setting, and its recap
shows changed=0 and unreachable=0: it stopped before Ansible even tried to
connect. The controls, with no bad value, pass every check and then fail
only as unreachable, so the checks do accept good input.

The runs are independent ansible-playbook processes; they run in parallel
once per session (each start costs seconds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from playbook_run import PlaybookRun  # tests/integration/playbook_run.py

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PRODUCTION_VARS = REPO / "inventories" / "production" / "group_vars" / "connect_servers" / "main.yml"
WORKERS = int(os.environ.get("CONNECT_TEST_WORKERS", max(2, min(6, 2 * (os.cpu_count() or 1)))))
IMAGE = "registry.example.com/connect/app:1.4.2"
BRN_KEY = "0123456789abcdef" * 4  # 64 hex digits, only for these runs
BAD_KEY = "not-a-key-but-a-secret-value-7q"  # must never appear in the output
BACKUP_PASS = "backup-passphrase-only-for-these-runs-0123"
OFFSITE_PASS = "offsite-passphrase-only-for-these-runs-4567"
GRAFANA_PASS = "grafana-password-only-for-these-runs"

# The role's thresholds, for cases that change one of them.
THRESHOLDS = yaml.safe_load((REPO / "roles" / "monitoring" / "defaults" / "main.yml").read_text())["monitoring_thresholds"]

# (id, playbook, extra vars, text the output must contain)
CASES = [
    # Types and choices: the argument specs.
    ("wrong-type", "site.yml", {"host_baseline_ssh_port": "twenty-two"}, "host_baseline_ssh_port"),
    ("unknown-choice", "site.yml", {"docker_engine_install_method": "snap"}, "docker_engine_install_method"),
    ("root-login-choice", "site.yml", {"host_baseline_ssh_permit_root_login": "yes"}, "host_baseline_ssh_permit_root_login"),
    ("peak-season-not-a-bool", "site.yml", {"compose_stack_peak_season": "maybe"}, "compose_stack_peak_season"),
    ("queue-may-not-evict", "site.yml", {"redis_queue_maxmemory_policy": "allkeys-lru"}, "redis_queue_maxmemory_policy"),
    ("nginx-unknown-tls-mode", "site.yml", {"nginx_tls_mode": "acme"}, "nginx_tls_mode"),
    (
        "admins-as-a-mapping",
        "site.yml",
        {"host_baseline_admin_users": {"name": "ops-admin", "ssh_keys": []}},
        "argument 'host_baseline_admin_users' is of type dict",
    ),
    # host_baseline's own checks.
    ("bad-cidr", "site.yml", {"host_baseline_firewall_ssh_sources": ["10.0.0.0/33"]}, "host_baseline_firewall_ssh_sources"),
    ("no-admins", "site.yml", {"host_baseline_admin_users": []}, "lock everyone out"),
    ("ssh-denied", "site.yml", {"host_baseline_firewall_denied_tcp_ports": [22, 5432]}, "cut SSH off"),
    ("ansible-user-locked-out", "site.yml", {"ansible_user": "root"}, "Ansible connects over SSH as 'root'"),
    ("ssh-key-cut-short", "site.yml", "CUT_KEY", "host_baseline_admin_users entry 'ops-admin' has an ssh_keys item that is not a whole"),
    (
        "postgres-port-public",
        "site.yml",
        {"host_baseline_firewall_public_tcp_ports": [80, 443, 5432]},
        "host_baseline_firewall_public_tcp_ports would open 5432 to everyone",
    ),
    (
        "pgbouncer-port-public-despite-empty-deny-list",
        "site.yml",
        {"host_baseline_firewall_public_tcp_ports": [80, 443, 6432], "host_baseline_firewall_denied_tcp_ports": []},
        "host_baseline_firewall_public_tcp_ports would open 6432 to everyone",
    ),
    (
        "redis-port-reaches-containers",
        "site.yml",
        {"docker_engine_public_tcp_ports": [80, 443, 6379]},
        "docker_engine_public_tcp_ports would let the outside reach 6379",
    ),
    # The plan and the data tier.
    ("plan-over-commits-host", "site.yml", {"compose_stack_app_instances": 9}, "capacity_plan"),
    ("postgres-rejects-typo", "site.yml", {"postgres_settings_overrides": {"shared_bufers": "1GB"}}, "shared_bufers"),
    (
        "pool-needs-more-connections",
        "site.yml",
        {"postgres_tune_max_connections": 40},
        "max_connections 40 (postgres_tune_max_connections) leaves no room for PgBouncer",
    ),
    (
        "pool-too-big-for-postgres",
        "site.yml",
        {"pgbouncer_default_pool_size": 95},
        "raise postgres_tune_max_connections to at least 108",
    ),
    ("redis-maxmemory-above-limit", "site.yml", {"redis_maxmemory_percent": 150}, "redis_maxmemory_percent must be from 1 to 95"),
    ("redis-maxmemory-zero", "site.yml", {"redis_maxmemory_percent": 0}, "redis_maxmemory_percent must be from 1 to 95"),
    (
        "redis-monitor-is-the-admin",
        "site.yml",
        {"redis_monitor_user": "ops"},
        'redis_admin_user ("ops") and redis_monitor_user ("ops") must be two different names',
    ),
    (
        "postgres-monitor-is-the-owner",
        "site.yml",
        {"postgres_monitor_user": "connect"},
        'postgres_monitor_user ("connect") must be a lower-case PostgreSQL name',
    ),
    (
        "healthcheck-start-interval-not-a-duration",
        "site.yml",
        {"compose_stack_healthcheck_start_interval": "soon"},
        'compose_stack_healthcheck_start_interval a duration such as 1s or 500ms, or "" (got "soon")',
    ),
    # What production must have (issue 22): each refused, naming the variable that would accept it.
    (
        "production-without-offsite",
        "site.yml",
        {"postgres_backup_s3_enabled": False},
        "so a lost disk would leave nothing to restore. Configure the off-site repository",
    ),
    (
        "production-without-offsite-names-the-waiver",
        "site.yml",
        {"postgres_backup_s3_enabled": False},
        "postgres_backup_accept_no_offsite_copy: true",
    ),
    (
        "production-runs-the-test-apps-migration",
        "site.yml",
        {"app_migrate_command": ["python3", "/app/migrate.py"]},
        "app_migrate_command names the test harness's app",
    ),
    ("production-runs-the-test-apps-server", "site.yml", {"app_command": ["python3", "/app/server.py"]}, "set app_test_app_accepted: true"),
    (
        "production-runs-the-test-apps-worker",
        "site.yml",
        {"scraper_command": ["python3", "/app/scraper.py"]},
        "scraper_command names the test harness's app",
    ),
    (
        "production-ssh-open-to-the-world",
        "site.yml",
        {"host_baseline_firewall_ssh_sources": []},
        "set host_baseline_firewall_ssh_from_anywhere_accepted: true",
    ),
    (
        "production-ssh-from-the-examples-addresses",
        "site.yml",
        {"host_baseline_firewall_ssh_sources": ["203.0.113.0/28", "10.20.0.0/24"]},
        "host_baseline_firewall_ssh_sources lists 203.0.113.0/28, a documentation range",
    ),
    (
        "production-grafana-user-without-password",
        "site.yml",
        {"nginx_grafana_users": [{"name": "ops", "password": ""}]},
        "nginx_grafana_users needs at least one user, each a name and a password of 12 characters or more",
    ),
    (
        "backup-retention-too-short",
        "site.yml",
        {"postgres_backup_retention_days": 10},
        "postgres_backup_retention_days is 10: give at least 15",
    ),
    (
        "backup-local-keeps-longer-than-allowed",
        "site.yml",
        {"postgres_backup_local_retention_days": 120},
        "postgres_backup_local_retention_days is 120: give 9 to 90 days",
    ),
    (
        "backup-predeploy-retention",
        "site.yml",
        {"backup_predeploy_retention_days": 0},
        "backup_predeploy_retention_days must be from 1 to 30",
    ),
    # Backups.
    ("backup-no-passphrase", "site.yml", {"postgres_backup_local_cipher_pass": ""}, "postgres_backup_local_cipher_pass is empty"),
    ("backup-no-restic-password", "site.yml", {"backup_restic_password": "short"}, "backup_restic_password is empty or shorter"),
    (
        "backup-financial-no-key",
        "site.yml",
        {"backup_financial_recipients": []},
        "backup_financial_recipients is empty: give the age public key(s)",
    ),
    (
        "backup-financial-private-key",
        "site.yml",
        {"backup_financial_recipients": ["AGE-SECRET-KEY-1QQQQ"]},
        "1 of them is not one (never give a private key",
    ),
    (
        "backup-queue-retention",
        "site.yml",
        {"backup_queue_retention_days": 0},
        "backup_queue_retention_days and backup_config_retention_days must be at least 1",
    ),
    (
        "status-disk-percent",
        "status.yml",
        {"operations_status_disk_percent": 150},
        "operations_status_disk_percent and operations_status_memory_percent must be from 1 to 100",
    ),
    (
        "hardening-disables-docker",
        "site.yml",
        {"host_baseline_disabled_kernel_modules": ["dccp", "br-netfilter"]},
        "host_baseline_disabled_kernel_modules must not hold a module Docker needs (br_netfilter)",
    ),
    (
        "rotate-a-key-that-protects-data",
        "rotate.yml",
        {"rotate": "app_encryption_key"},
        "rotate must be 'all' or names from postgres_superuser_password",
    ),
    (
        "restart-an-unknown-service",
        "restart.yml",
        {"operations_restart_service": "mysql"},
        "operations_restart_service must be one of",
    ),
    (
        "maintenance-vacuum-timeout",
        "site.yml",
        {"operations_maintenance_vacuum_timeout": "2 hours"},
        "operations_maintenance_vacuum_timeout must be a PostgreSQL duration such as 90min or 2h",
    ),
    ("nginx-certificate-too-long", "site.yml", {"nginx_selfsigned_days": 825}, "nginx_selfsigned_days must be from 1 to 366"),
    ("dr-target-time-without-zone", "dr.yml", {"dr_target_time": "2026-11-30 14:05"}, "dr_target_time must be a time with its zone"),
    ("dr-overwrite-not-a-bool", "dr.yml", {"dr_overwrite_live_data": "maybe"}, "dr_overwrite_live_data must be true or false"),
    ("backup-archive-timeout", "site.yml", {"postgres_backup_archive_timeout": 0}, "postgres_backup_archive_timeout is 0"),
    (
        "backup-bad-schedule-left-empty",
        "site.yml",
        {"backup_postgres_full_calendar": " "},
        "backup_postgres_*_calendar must be systemd OnCalendar expressions",
    ),
    ("backup-spool-size", "site.yml", {"postgres_backup_spool_max": "4 gigs"}, "postgres_backup_spool_max is 4 gigs"),
    (
        "backup-offsite-incomplete",
        "site.yml",
        {"postgres_backup_s3_enabled": True, "postgres_backup_s3_key": "", "postgres_backup_s3_cipher_pass": BACKUP_PASS},
        "postgres_backup_s3_key is empty",
    ),
    (
        "backup-offsite-same-passphrase",
        "site.yml",
        {
            "postgres_backup_s3_enabled": True,
            "postgres_backup_s3_key": "k",
            "postgres_backup_s3_key_secret": "s",
            "postgres_backup_s3_cipher_pass": BACKUP_PASS,
        },
        "equals the local one",
    ),
    # The app and the scraper.
    ("app-bad-brn-key", "site.yml", {"app_encryption_key": BAD_KEY}, "app_encryption_key is not 64 hex digits or base64 of 32 bytes"),
    ("app-no-brn-key", "site.yml", {"app_encryption_key": ""}, "openssl rand -hex 32"),
    ("app-no-image", "site.yml", {"app_image": ""}, "app_image (the first release"),
    (
        "app-one-instance",
        "site.yml",
        {"compose_stack_app_instances": 1},
        "compose_stack_app_instances must be at least 2",
    ),
    ("scraper-bad-schedule", "site.yml", {"scraper_schedule": ["9am", "15:00"]}, "HH:MM"),
    # nginx.
    ("nginx-le-without-email", "site.yml", {"nginx_tls_mode": "letsencrypt", "nginx_letsencrypt_email": ""}, "nginx_letsencrypt_email"),
    (
        "nginx-le-for-an-address",
        "site.yml",
        {
            "nginx_tls_mode": "letsencrypt",
            "nginx_letsencrypt_email": "ops@example.kr",
            "nginx_server_names": ["connect.example.kr", "203.0.113.10", "localhost"],
        },
        "issues no certificate for 203.0.113.10, localhost",
    ),
    (
        "nginx-le-server-not-https",
        "site.yml",
        {
            "nginx_tls_mode": "letsencrypt",
            "nginx_letsencrypt_email": "ops@example.kr",
            "nginx_letsencrypt_server": "http://acme.example/dir",
        },
        "nginx_letsencrypt_server must be an ACME directory URL over HTTPS",
    ),
    ("nginx-provided-without-files", "site.yml", {"nginx_tls_mode": "provided"}, "nginx_tls_certificate_src and nginx_tls_key_src"),
    ("nginx-bad-rate", "site.yml", {"nginx_rate_limit_auth": "10 per minute"}, "rate limits like 100r/s"),
    (
        "nginx-two-names-in-one-item",
        "site.yml",
        {"nginx_server_names": ["connect.example.kr www.connect.example.kr"]},
        'nginx_server_names item "connect.example.kr www.connect.example.kr" is not a host name or IPv4 address',
    ),
    (
        "nginx-name-not-a-host",
        "site.yml",
        {"nginx_server_names": ["connect.example.kr", "https://connect.example.kr/"]},
        "nginx_server_names item",
    ),
    # Releases.
    (
        "release-image-with-a-command",
        "deploy.yml",
        {"release_image": IMAGE + ";touch /tmp/x"},
        'release_image "registry.example.com/connect/app:1.4.2;touch /tmp/x" is not an image reference',
    ),
    ("release-image-without-tag", "deploy.yml", {"release_image": "registry.example.com/connect/app"}, "is not an image reference"),
    ("release-nothing-to-release", "deploy.yml", {}, "Give exactly one of release_image"),
    ("release-two-sources", "deploy.yml", {"release_image": IMAGE, "release_git_ref": "main", "release_git_repo": "x"}, "Give exactly one"),
    (
        "release-unknown-branch",
        "deploy.yml",
        {"release_git_repo": "https://example.invalid/connect.git", "release_git_ref": "feature/x"},
        "must be one of the branches",
    ),
    ("rollback-target-not-a-tag", "rollback.yml", {"release_rollback_to": "yesterday; rm -rf /"}, "release_rollback_to must be empty"),
    # Monitoring: thresholds, receivers without their secret, durations.
    (
        "monitoring-threshold-over-100",
        "site.yml",
        {"monitoring_thresholds": {**THRESHOLDS, "disk_percent": {"warning": 80, "critical": 120}}},
        "monitoring_thresholds.disk_percent is 80/120: give percentages above 0 and at most 100",
    ),
    (
        "monitoring-warning-above-critical",
        "site.yml",
        {"monitoring_thresholds": {**THRESHOLDS, "cpu_percent": {"warning": 90, "critical": 85}}},
        "monitoring_thresholds.cpu_percent: warning 90 must be below critical 85",
    ),
    (
        "monitoring-slack-without-webhook",
        "site.yml",
        {"monitoring_alertmanager_slack_webhook_url": ""},
        "needs monitoring_alertmanager_slack_webhook_url",
    ),
    (
        "monitoring-smtp-login-without-password",
        "site.yml",
        {"monitoring_alertmanager_smtp_username": "alerts"},
        "monitoring_alertmanager_smtp_username is set but monitoring_alertmanager_smtp_password",
    ),
    ("monitoring-no-receiver", "site.yml", {"monitoring_alertmanager_receivers": []}, "give one or both of slack and email"),
    (
        "monitoring-bad-retention",
        "site.yml",
        {"monitoring_prometheus_retention_size": "20 gigs"},
        "monitoring_prometheus_retention_size is",
    ),
    (
        "monitoring-no-heartbeat-receiver",
        "site.yml",
        {"monitoring_heartbeat_url": ""},
        "without it nobody notices when the whole server is down",
    ),
    ("monitoring-bad-for", "site.yml", {"monitoring_alert_for": {"instance_down": "soon"}}, "monitoring_alert_for.instance_down is"),
]

# No bad value: every check passes, then the host cannot be reached.
CONTROLS = [
    ("site", "site.yml", {}),
    ("deploy", "deploy.yml", {"release_image": IMAGE}),
    ("deploy-by-digest", "deploy.yml", {"release_image": "registry.example.com:5000/connect/app@sha256:" + "ab" * 32}),
    ("rollback", "rollback.yml", {}),
    ("rollback-to-a-tag", "rollback.yml", {"release_rollback_to": "20261126T101500-3f2a9c1"}),
]


@pytest.fixture(scope="session")
def admin_key(tmp_path_factory):
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen is not installed")
    path = tmp_path_factory.mktemp("key") / "ops_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops-admin@test", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="session")
def inventory(tmp_path_factory, admin_key):
    """Production's group_vars plus what production must add; a host nobody answers for."""
    root = tmp_path_factory.mktemp("inventory")
    group_vars = root / "group_vars" / "connect_servers"
    group_vars.mkdir(parents=True)
    shutil.copy(PRODUCTION_VARS, group_vars / "main.yml")
    (group_vars / "test.yml").write_text(
        yaml.safe_dump(
            {
                "host_baseline_admin_users": [{"name": "ops-admin", "ssh_keys": [admin_key]}],
                "compose_stack_host_cpus": 16,
                "compose_stack_host_memory": "128g",
                "app_image": IMAGE,
                "app_encryption_key": BRN_KEY,
                "postgres_backup_local_cipher_pass": BACKUP_PASS,
                "postgres_backup_s3_key": "AKIA-only-for-these-runs",
                "postgres_backup_s3_key_secret": "secret-only-for-these-runs",
                "postgres_backup_s3_cipher_pass": OFFSITE_PASS,
                "host_baseline_firewall_ssh_sources": ["10.20.0.0/24", "10.30.0.7/32"],
                "nginx_grafana_users": [{"name": "ops-admin", "password": GRAFANA_PASS}],
                "backup_restic_password": BACKUP_PASS,
                "backup_financial_recipients": [AGE_KEY],
                "nginx_server_names": ["connect.example.kr", "www.connect.example.kr"],
                "nginx_letsencrypt_email": "ops@example.kr",
                "monitoring_alertmanager_slack_webhook_url": "https://hooks.slack.com/services/T000/B000/only-for-these-runs",
                "monitoring_alertmanager_email_to": "ops@example.kr",
                "monitoring_alertmanager_email_from": "alerts@example.kr",
                "monitoring_alertmanager_smtp_smarthost": "smtp.example.kr:587",
                "monitoring_heartbeat_url": "https://hc-ping.com/00000000-0000-4000-8000-only-for-these-runs",
            }
        )
    )
    (root / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "connect_servers": {
                    "hosts": {"connect-nowhere": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "ops-admin"}}
                }
            }
        )
    )
    return root


# A public key of the right form (the server only ever holds public ones).
AGE_KEY = "age12hxrt7qq2lh7u65szlpyewuesahar0j54fsknsy3psjcjzs5cv7suhtyrz"


def _run(inventory: Path, playbook: str, extra_vars: dict) -> PlaybookRun:
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return PlaybookRun(subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False))


@pytest.fixture(scope="session")
def runs(inventory, admin_key):
    """Every case and control, run once, in parallel: {id: PlaybookRun}."""
    key_type, data, comment = admin_key.split(" ", 2)
    cut_key = {"host_baseline_admin_users": [{"name": "ops-admin", "ssh_keys": [f"{key_type} {data[:-12]} {comment}"]}]}
    jobs = {case_id: (playbook, cut_key if extra == "CUT_KEY" else extra) for case_id, playbook, extra, _message in CASES}
    jobs.update({f"control-{case_id}": (playbook, extra) for case_id, playbook, extra in CONTROLS})
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {case_id: pool.submit(_run, inventory, playbook, extra) for case_id, (playbook, extra) in jobs.items()}
        return {case_id: future.result() for case_id, future in futures.items()}


@pytest.mark.parametrize(("case_id", "message"), [pytest.param(c[0], c[3], id=c[0]) for c in CASES])
def test_bad_input_fails_before_connecting(runs, case_id, message):
    run = runs[case_id]
    assert run.rc != 0, run
    assert message in run.flat, run
    assert run.recap is not None, run
    assert run.recap["unreachable"] == 0, run
    assert run.recap["changed"] == 0, run
    assert run.recap["failed"] == 1, run


def test_no_key_or_passphrase_is_ever_shown(runs):
    for run in runs.values():
        assert BAD_KEY not in run.output
        assert BRN_KEY not in run.output
        assert BACKUP_PASS not in run.output
        assert OFFSITE_PASS not in run.output
        assert GRAFANA_PASS not in run.output


@pytest.mark.parametrize("case_id", [c[0] for c in CONTROLS])
def test_good_input_passes_every_check_then_meets_the_unreachable_host(runs, case_id):
    run = runs[f"control-{case_id}"]
    assert run.rc != 0, run
    assert run.recap == {**run.recap, "changed": 0, "unreachable": 1, "failed": 0}, run
    assert "Connection refused" in run.flat or "Failed to connect" in run.flat, run


def test_site_runs_every_roles_checks_before_any_role(runs):
    """The control reaches host_baseline's first connection only after every role's checks."""
    output = runs["control-site"].output
    sections = re.split(r"^TASK \[(.+?)\] \*+$", output, flags=re.MULTILINE)
    tasks = list(zip(sections[1::2], sections[2::2], strict=True))
    first_role_task = next(
        i
        for i, (name, _time) in enumerate(tasks)
        if "Validating arguments against arg spec 'main'" in name or name.startswith("connect.platform.monitoring : Read the size")
    )
    pattern = re.compile(r"connect\.platform\.(\w+) : Validating arguments against arg spec 'assert'")
    checked = [m.group(1) for name, _time in tasks[:first_role_task] if (m := pattern.match(name))]
    assert checked == [
        "host_baseline",
        "docker_engine",
        "postgres",
        "pgbouncer",
        "redis",
        "app",
        "scraper",
        "nginx",
        "backup",
        "operations",
        "monitoring",
    ]
    assert any(name.startswith("connect.platform.compose_stack : Validating arguments against arg spec 'plan'") for name, _time in tasks)
    # The host's size is given: the plan asks the host nothing.
    (plan_facts,) = [body for name, body in tasks if name.startswith("connect.platform.compose_stack : Gather facts")]
    assert "skipping: [connect-nowhere]" in plan_facts
    # The first task that needs the host is a read: the disk under Prometheus's retention.
    assert tasks[-1][0].startswith("connect.platform.monitoring : Read the size of the file system under"), tasks[-1][0]
    assert "UNREACHABLE" in tasks[-1][1]
