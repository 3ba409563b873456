"""The emergency tasks (issue 13, seed §9.3 and §11): restart.yml refuses a
restart that interrupts requests unless told, and reloads nginx without a
restart; pgbouncer_reset.yml ends a session left idle in a transaction
through PgBouncer (check mode only lists it); slow_queries.yml shows the
slowest statements. Restarting an app instance under load is in the release
part (its load generator)."""

import time

from conftest import CONTAINER, CONTRACT, DATABASE, PORT, SERVICES, edge, started_at

PG = CONTAINER["postgres"]
OWNER = CONTRACT["compose_stack_database"]["owner"]
OWNER_PASSWORD_FILE = f"{CONTRACT['compose_stack_root']}/secrets/postgres_owner_password"
PSQL = f"docker exec -u postgres {PG} psql -X -At -d {DATABASE} -c"
HUNG = f"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND usename = '{OWNER}'"


def test_a_restart_that_interrupts_requests_is_refused_unless_told(host, playbook):
    before = started_at(host, PG)
    run = playbook(playbook="restart.yml", extra_vars={"operations_restart_service": "postgres"})
    assert run.rc != 0 and "Restarting postgres interrupts requests" in run.flat, run
    assert "operations_restart_interrupts_requests=true" in run.flat
    assert started_at(host, PG) == before
    run = playbook(playbook="restart.yml", extra_vars={"operations_restart_service": "mysql"})
    assert run.rc != 0 and "operations_restart_service must be one of app1, app2, app" in run.flat, run


def test_nginx_is_reloaded_not_restarted(host, playbook):
    before = started_at(host, CONTAINER["nginx"])
    run = playbook(playbook="restart.yml", extra_vars={"operations_restart_service": "nginx"})
    assert run.rc == 0 and run.recap["changed"] == 1, run
    assert started_at(host, CONTAINER["nginx"]) == before
    assert edge("/api/health").status == 200


def test_a_session_hung_in_a_transaction_through_pgbouncer_is_ended(host, playbook):
    # The app's role, through PgBouncer, opens a transaction and stays idle in it.
    host.check_output(
        f"docker exec -i -u postgres {PG} sh -c 'umask 077; read -r p; echo \"*:*:*:*:$p\" > /tmp/hung.pgpass' < {OWNER_PASSWORD_FILE}"
    )
    host.check_output(
        f'docker exec -d -u postgres {PG} sh -c \'(echo "BEGIN; SELECT 1;"; sleep 90) | '
        f"PGPASSFILE=/tmp/hung.pgpass psql -X -h {SERVICES['pgbouncer']['service']} -p {PORT['pgbouncer']} -U {OWNER} -d {DATABASE}'"
    )
    try:
        deadline = time.monotonic() + 20
        while host.check_output(f'{PSQL} "{HUNG}"') != "1" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert host.check_output(f'{PSQL} "{HUNG}"') == "1"
        time.sleep(2)
        limits = {"operations_hung_idle_in_transaction_seconds": 1}
        checked = playbook("--check", playbook="pgbouncer_reset.yml", extra_vars=limits)
        assert checked.rc == 0 and "idle in transaction" in checked.flat and "would end" in checked.flat, checked
        assert host.check_output(f'{PSQL} "{HUNG}"') == "1", "check mode ended the session"
        run = playbook(playbook="pgbouncer_reset.yml", extra_vars=limits)
        assert run.rc == 0 and "idle in transaction" in run.flat and "before: connect/connect: clients active" in run.flat, run
        assert host.check_output(f'{PSQL} "{HUNG}"') == "0"
        assert edge("/api/health").status == 200
    finally:
        host.run(f"docker exec {PG} sh -c 'rm -f /tmp/hung.pgpass; pkill -f \"sleep 90\"'")


def test_the_slowest_statements_are_shown(host, playbook):
    host.check_output(f'{PSQL} "SELECT pg_sleep(0.4)"')
    run = playbook(playbook="slow_queries.yml", extra_vars={"operations_slow_queries_limit": 3})
    assert run.rc == 0 and run.recap["changed"] == 0, run
    assert "mean_ms" in run.flat and "SELECT pg_sleep($1)" in run.flat, run
