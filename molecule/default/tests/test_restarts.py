"""Part `restarts` (changes settings; after the read-only parts, see
conftest.PARTS): a rerun restarts nothing, and changing one service's
setting restarts (or reloads) only that service. Each test puts the
inventory's settings back; a failure triggers a converge (RESTORE)."""

from conftest import APPS, CONTAINER, PORT, started_at

# This part changes the server; after a failed test a converge puts it back (conftest).
RESTORE = ("--tags", "stack")

CONTAINERS = (
    *(CONTAINER[key] for key in ("postgres", "pgbouncer", "redis-cache", "redis-queue")),
    *APPS,
    CONTAINER["scraper"],
    CONTAINER["nginx"],
)


def psql(host, sql):
    return host.check_output(f"docker exec -u postgres {CONTAINER['postgres']} psql -X -At -c '{sql}'")


def changed_containers(before, after):
    return sorted(name for name in CONTAINERS if before[name] != after[name])


def test_rerun_changes_and_restarts_nothing(host, playbook):
    before = started_at(host, *CONTAINERS)
    run = playbook("--tags", "stack")
    assert run.rc == 0 and run.recap["changed"] == 0, run
    assert started_at(host, *CONTAINERS) == before


def test_reloadable_changes_restart_nothing_but_the_changed_cache(host, playbook):
    before = started_at(host, *CONTAINERS)
    run = playbook(
        "--tags",
        "stack",
        extra_vars={
            "postgres_settings_overrides": {"work_mem": "8MB"},  # reload: PostgreSQL keeps running
            "pgbouncer_max_client_conn": 400,  # SIGHUP: PgBouncer keeps its clients
            "redis_cache_maxmemory_policy": "allkeys-lfu",  # new config: only the cache is recreated
        },
    )
    assert run.rc == 0, run
    assert changed_containers(before, started_at(host, *CONTAINERS)) == [CONTAINER["redis-cache"]]
    assert psql(host, "SHOW work_mem") == "8MB"
    stats = host.check_output("cat /opt/connect/secrets/pgbouncer_stats_password")
    config = host.check_output(
        f"docker exec -e PGPASSWORD={stats} {CONTAINER['pgbouncer']} "
        f"psql -X -At -h 127.0.0.1 -p {PORT['pgbouncer']} -U pgbouncer_stats pgbouncer -c 'SHOW CONFIG'"
    )
    assert "max_client_conn|400|" in config
    assert "allkeys-lfu" in host.check_output(
        f"docker exec {CONTAINER['redis-cache']} sh -c 'grep maxmemory-policy /usr/local/etc/redis/redis.conf'"
    )


def test_restart_only_setting_restarts_only_postgres(host, playbook):
    before = started_at(host, *CONTAINERS)
    run = playbook(
        "--tags",
        "stack",
        extra_vars={
            "postgres_settings_overrides": {"work_mem": "8MB", "shared_buffers": "256MB"},
            "pgbouncer_max_client_conn": 400,
            "redis_cache_maxmemory_policy": "allkeys-lfu",
        },
    )
    assert run.rc == 0, run
    assert changed_containers(before, started_at(host, *CONTAINERS)) == [CONTAINER["postgres"]]
    assert psql(host, "SHOW shared_buffers") == "256MB"


def test_back_to_the_inventory(host, playbook):
    run = playbook("--tags", "stack")
    assert run.rc == 0, run
    assert psql(host, "SHOW work_mem") != "8MB"
    assert psql(host, "SHOW shared_buffers") != "256MB"


def test_app_and_edge_changes_roll_the_instances_and_reload_nginx_under_load(host, playbook):
    from conftest import edge, loadgen, loadgen_result

    before = started_at(host, *CONTAINERS)
    load = loadgen("--rate", "30", "--mix", "get=60,post=20,health=20", duration=600, background=True, stop_file=True)
    try:
        run = playbook(
            "--tags",
            "stack",
            extra_vars={
                "app_extra_env": {"FEATURE_FLAGS": "matching-v2"},  # .env.production: every instance, one at a time
                "nginx_client_max_body_size": "50M",  # nginx -t, then a reload
            },
        )
    finally:
        load.stop()
    summary = loadgen_result(load)
    assert run.rc == 0, run
    assert changed_containers(before, started_at(host, *CONTAINERS)) == sorted([*APPS, CONTAINER["scraper"]])
    assert "client_max_body_size 50M;" in host.check_output(f"docker exec {CONTAINER['nginx']} nginx -T")
    assert "FEATURE_FLAGS=matching-v2" in host.check_output(f"docker exec {APPS[0]} env")
    # The instances were replaced one at a time behind nginx: nobody noticed.
    assert summary["failed"] == 0, summary["errors_sample"]
    assert edge("/api/health").status == 200
