"""status.yml (issue 13): the morning checklist, read-only. On the converged
server (after the backup part, so every job has a result) nothing needs
attention and the table shows every container, the release of each app
instance, the backups and the certificate; a stopped scraper makes it fail
with one line saying what to do; it changes nothing."""

from conftest import APPS, CONTAINER, harness_vars, wait_healthy

# A failed test here leaves the scraper stopped: the scraper's converge starts it.
RESTORE = ("--tags", "scraper")


def test_a_healthy_server_needs_no_attention(playbook):
    run = playbook(playbook="status.yml")
    assert run.rc == 0 and run.recap["changed"] == 0, run
    assert "nothing needs attention" in run.flat, run
    absent = set() if harness_vars().get("monitoring_grafana_enabled", True) else {CONTAINER["grafana"]}
    for name in set(CONTAINER.values()) - absent:
        assert name in run.flat, name
    assert "alerts firing" in run.flat, run  # Alertmanager read (no critical alert: rc 0)
    for app in APPS:
        assert f"{app} running (healthy), release" in run.flat, run
    for row in (
        "pg-diff ok",
        "PostgreSQL repo1 newest backup",
        "PostgreSQL repo2 newest backup",
        "WAL archiving ok",
        "days left",
        "waiting,",
        "jobs done,",
    ):
        assert row in run.flat, row


def test_a_stopped_scraper_fails_the_checklist_with_what_to_do(host, playbook):
    scraper = CONTAINER["scraper"]
    host.check_output(f"docker stop {scraper}")
    try:
        run = playbook(playbook="status.yml")
    finally:
        host.check_output(f"docker start {scraper}")
    assert run.rc != 0, run
    assert f"{scraper} is exited: read `docker logs --tail 50 {scraper}`, then ansible-playbook site.yml" in run.flat, run
    assert run.recap["changed"] == 0, run
    wait_healthy(host, scraper)
