"""Playbook-level behaviour: check mode predicts nothing after converge, and
bad input fails before anything on the server changes."""

import pytest

WATCHED = (
    "/etc/ssh/sshd_config /etc/docker/daemon.json /etc/sysctl.d/60-connect.conf "
    "/opt/connect/config/postgres/postgresql.conf /opt/connect/docker-compose.production.yml "
    "/opt/connect/.env.production /opt/connect/config/nginx/conf.d/connect.conf /opt/connect/config/upstreams/connect_app.conf"
)


def test_check_mode_after_converge_reports_no_change(playbook):
    run = playbook("--check")
    assert run.rc == 0, run
    assert run.recap["changed"] == 0, run
    assert run.recap["failed"] == 0, run


BAD_INPUT = [
    pytest.param({"host_baseline_ssh_port": "twenty-two"}, "host_baseline_ssh_port", id="wrong-type"),
    pytest.param({"docker_engine_install_method": "snap"}, "docker_engine_install_method", id="unknown-choice"),
    pytest.param({"host_baseline_ssh_permit_root_login": "yes"}, "host_baseline_ssh_permit_root_login", id="root-login-choice"),
    pytest.param({"host_baseline_firewall_ssh_sources": ["10.0.0.0/33"]}, "host_baseline_firewall_ssh_sources", id="bad-cidr"),
    pytest.param({"host_baseline_admin_users": []}, "lock everyone out", id="no-admins"),
    pytest.param({"host_baseline_firewall_denied_tcp_ports": [22, 5432]}, "cut SSH off", id="ssh-denied"),
    pytest.param({"compose_stack_app_instances": 9}, "app", id="plan-over-commits-host"),
    pytest.param({"postgres_tune_max_connections": 40}, "max_connections", id="pool-needs-more-connections"),
    pytest.param({"postgres_settings_overrides": {"shared_bufers": "1GB"}}, "shared_bufers", id="postgres-rejects-typo"),
    pytest.param({"redis_queue_maxmemory_policy": "allkeys-lru"}, "redis_queue_maxmemory_policy", id="queue-may-not-evict"),
    pytest.param({"compose_stack_peak_season": "maybe"}, "compose_stack_peak_season", id="peak-season-not-a-bool"),
    pytest.param({"app_encryption_key": "not-a-key"}, "openssl rand -hex 32", id="app-bad-brn-key"),
    pytest.param({"app_image": ""}, "app_image (the first release", id="app-no-image"),
    pytest.param({"nginx_tls_mode": "letsencrypt"}, "nginx_letsencrypt_email", id="nginx-le-without-email"),
    pytest.param({"nginx_tls_mode": "acme"}, "nginx_tls_mode", id="nginx-unknown-tls-mode"),
    pytest.param({"nginx_rate_limit_auth": "10 per minute"}, "rate limits like 100r/s", id="nginx-bad-rate"),
    pytest.param({"scraper_schedule": ["9am", "15:00"]}, "HH:MM", id="scraper-bad-schedule"),
    pytest.param(
        {"ansible_connection": "ssh", "ansible_user": "root"},
        "Ansible connects over SSH as 'root'",
        id="ansible-user-locked-out",
    ),
]


# Inputs checked by a later role: run only that part of the play.
TAGS = {
    "unknown-choice": "docker",
    "postgres-rejects-typo": "stack",
    "pool-needs-more-connections": "stack",
    "queue-may-not-evict": "stack",
    "app-bad-brn-key": "app",
    "app-no-image": "app",
    "nginx-le-without-email": "nginx",
    "nginx-unknown-tls-mode": "nginx",
    "nginx-bad-rate": "nginx",
    "scraper-bad-schedule": "scraper",
}


@pytest.mark.parametrize(("extra_vars", "message"), BAD_INPUT)
def test_bad_input_fails_before_any_change(host, playbook, extra_vars, message, request):
    before = host.check_output(f"stat -c '%n %Y' {WATCHED}")
    tags = next((("--tags", t) for case, t in TAGS.items() if request.node.callspec.id.endswith(case)), ())
    run = playbook(*tags, extra_vars=extra_vars)
    assert run.rc != 0, run
    assert message in run.flat, run
    assert run.recap is not None and run.recap["changed"] == 0, run
    assert host.check_output(f"stat -c '%n %Y' {WATCHED}") == before
