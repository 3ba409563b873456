"""The data tier (postgres, pgbouncer, redis cache and queue) as the services report it."""

import hashlib
import json

import pytest
from ansible_collections.connect.platform.plugins.module_utils._pgtune import pg_settings
from ansible_collections.connect.platform.plugins.module_utils._units import parse_cpus, parse_size
from conftest import CONTAINER, DATABASE, PORT, SERVICES, harness_vars, role_defaults, secret, server_address, tcp_answers

DATA = {key: CONTAINER[key] for key in ("postgres", "pgbouncer", "redis-cache", "redis-queue")}
# A client on the backend network reaches PgBouncer by its service name.
PGBOUNCER = f"-h {SERVICES['pgbouncer']['service']} -p {PORT['pgbouncer']}"


def psql(host, sql, db=DATABASE):
    return host.check_output(f"docker exec -u postgres {CONTAINER['postgres']} psql -X -At -d {db} -c {json.dumps(sql)}")


def pg_bytes(host, name):
    """A memory setting in bytes, as PostgreSQL reports it."""
    setting, unit = psql(host, f"SELECT setting, unit FROM pg_settings WHERE name = '{name}'").split("|")
    return int(setting) * {"8kB": 8192, "kB": 1024, "MB": 1024**2}[unit]


def expected_settings():
    resources = harness_vars()["compose_stack_resources"]["postgres"]
    d = role_defaults("postgres")
    return pg_settings(
        resources["mem_limit"],
        cpus=resources["cpus"],
        db_type=d["postgres_tune_db_type"],
        storage=d["postgres_tune_storage"],
        max_connections=d["postgres_tune_max_connections"],
        pg_version=15,
        overrides={**d["postgres_settings_overrides"], **d["postgres_required_settings"]},
    )


@pytest.mark.parametrize("name", ["shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem"])
def test_postgres_memory_settings_are_the_filters(host, name):
    want = expected_settings()[name]
    assert pg_bytes(host, name) == parse_size(want), f"{name}: server has {psql(host, f'SHOW {name}')}, filter says {want}"


def test_postgres_max_connections_and_extensions(host):
    assert psql(host, "SHOW max_connections") == expected_settings()["max_connections"] == "100"
    assert psql(host, "SHOW shared_preload_libraries") == "pg_stat_statements"
    assert psql(host, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'") == "1"
    assert psql(host, "SHOW password_encryption") == "scram-sha-256"


def test_postgres_owner_is_not_superuser(host):
    assert psql(host, "SELECT rolsuper FROM pg_roles WHERE rolname = 'connect'") == "f"
    assert psql(host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'connect'") == "connect"
    assert psql(host, "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'connect'", db="postgres") == "SCRAM-SHA-256$"


@pytest.fixture(scope="module")
def client(host):
    """A psql client container on the backend network, as the apps will be."""
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {CONTAINER['postgres']}")

    def run(args, password):
        return host.run(f"docker run --rm --network backend -e PGPASSWORD={password} --entrypoint psql {image} -X -At {args}")

    return run


def test_client_on_backend_queries_through_pgbouncer(host, client):
    result = client(f"{PGBOUNCER} -U {DATABASE} -d {DATABASE} -c 'SELECT current_user, 40 + 2'", secret(host, "postgres_owner_password"))
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "connect|42"


def test_wrong_password_is_refused_by_pgbouncer(host, client):
    result = client(f"{PGBOUNCER} -U {DATABASE} -d {DATABASE} -c 'SELECT 1'", "not-the-password")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr or "SASL authentication failed" in result.stderr


def test_pgbouncer_config_and_pools(host, client):
    stats = secret(host, "pgbouncer_stats_password")
    config = client(f"{PGBOUNCER} -U pgbouncer_stats -d pgbouncer -F '=' -c 'SHOW CONFIG'", stats)
    assert config.rc == 0, config.stderr
    values = dict(line.split("=")[:2] for line in config.stdout.splitlines())
    assert values["pool_mode"] == "transaction"
    assert values["default_pool_size"] == "50"
    assert values["max_client_conn"] == "500"
    assert values["reserve_pool_size"] == "10"
    assert values["server_lifetime"] == "3600"
    assert values["auth_type"] == "scram-sha-256"
    pools = client(f"{PGBOUNCER} -U pgbouncer_stats -d pgbouncer -c 'SHOW POOLS'", stats)
    assert any(line.startswith("connect|connect|") and line.endswith("|transaction") for line in pools.stdout.splitlines()), pools.stdout


def redis(host, container, port, *args, user="ops", secret_name="redis_admin_password"):
    password = secret(host, secret_name)
    cmd = " ".join(args)
    return host.run(
        f"docker exec -e REDISCLI_AUTH={password} {container} redis-cli --no-auth-warning -p {port} --user {user} {cmd}"
    ).stdout.strip()


@pytest.mark.parametrize(
    ("container", "port", "expected"),
    [
        (CONTAINER["redis-cache"], PORT["redis-cache"], {"maxmemory-policy": "allkeys-lru", "appendonly": "no", "save": ""}),
        (CONTAINER["redis-queue"], PORT["redis-queue"], {"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "everysec"}),
    ],
)
def test_redis_policies_and_persistence(host, container, port, expected):
    for key, value in expected.items():
        assert ([*redis(host, container, port, "CONFIG", "GET", key).splitlines(), ""])[:2] == [key, value]


@pytest.mark.parametrize(("container", "port", "service"), [(CONTAINER[key], PORT[key], key) for key in ("redis-cache", "redis-queue")])
def test_redis_maxmemory_leaves_headroom(host, container, port, service):
    limit = parse_size(harness_vars()["compose_stack_resources"][service]["mem_limit"])
    maxmemory = int(redis(host, container, port, "CONFIG", "GET", "maxmemory").splitlines()[1])
    assert maxmemory == int(limit * role_defaults("redis")["redis_maxmemory_percent"] / 100)


@pytest.mark.parametrize(
    ("container", "port", "secret_name"),
    [(CONTAINER[key], PORT[key], key.replace("-", "_") + "_password") for key in ("redis-cache", "redis-queue")],
)
def test_redis_app_user_cannot_run_dangerous_commands(host, container, port, secret_name):
    assert redis(host, container, port, "SET", "probe", "1", user="default", secret_name=secret_name) == "OK"
    for command in ("FLUSHALL", "CONFIG GET maxmemory", "KEYS 'probe*'", "SHUTDOWN"):
        assert "NOPERM" in redis(host, container, port, command, user="default", secret_name=secret_name), command
    # Redis refuses DEBUG and MODULE to everyone by default; ask the ACL itself
    # whether the app's user could run them (and the rest of the list).
    for command in ("DEBUG SLEEP 0", "MODULE LIST", "CLIENT KILL ID 1", "FUNCTION FLUSH", "ACL LIST", "SYNC"):
        verdict = redis(host, container, port, "ACL", "DRYRUN", "default", command)
        assert "no permissions" in verdict, (command, verdict)
    assert redis(host, container, port, "ACL", "DRYRUN", "default", "CLIENT", "SETNAME", "app") == "OK"
    assert (
        "NOAUTH" in host.run(f"docker exec {container} redis-cli -p {port} GET probe").stdout
        or "NOPERM" in host.run(f"docker exec {container} redis-cli -p {port} GET probe").stdout
    )


def test_queue_aof_grows_on_writes(host):
    def aof_size():
        return int(host.check_output("cat /opt/connect/data/redis-queue/appendonlydir/*.incr.aof | wc -c"))

    before = aof_size()
    for i in range(20):
        queue = (CONTAINER["redis-queue"], PORT["redis-queue"])
        redis(host, *queue, "RPUSH", "aof-probe", str(i), user="default", secret_name="redis_queue_password")
    assert aof_size() > before


@pytest.mark.parametrize("service", DATA)
def test_container_resources_as_planned(host, service):
    planned = harness_vars()["compose_stack_resources"][service]
    state = json.loads(host.check_output(f"docker inspect {DATA[service]}"))[0]
    assert state["HostConfig"]["NanoCpus"] == int(parse_cpus(planned["cpus"]) * 10**9)
    assert state["HostConfig"]["Memory"] == parse_size(planned["mem_limit"])
    assert state["HostConfig"]["MemoryReservation"] == parse_size(planned.get("mem_reservation", 0) or 0)
    assert state["State"]["Health"]["Status"] == "healthy"


@pytest.mark.parametrize("service", DATA)
def test_data_tier_only_on_backend_and_unpublished(host, service):
    """Every data service on backend alone; PostgreSQL also on egress when
    its off-site backup repository is on (the harness turns it on)."""
    state = json.loads(host.check_output(f"docker inspect {DATA[service]}"))[0]
    offsite = service == "postgres" and harness_vars().get("postgres_backup_s3_enabled", False)
    assert sorted(state["NetworkSettings"]["Networks"]) == (["backend", "egress"] if offsite else ["backend"])
    assert not any(state["NetworkSettings"]["Ports"].values() or [None])


@pytest.mark.parametrize("port", [PORT[key] for key in DATA])
def test_data_tier_ports_closed_on_server_addresses(host, port):
    address = server_address()
    assert host.run(f"timeout 3 bash -c '</dev/tcp/{address}/{port}'").rc != 0
    assert host.run(f"timeout 3 bash -c '</dev/tcp/127.0.0.1/{port}'").rc != 0
    assert not tcp_answers(address, port)


def test_backend_has_no_way_out(host):
    """From a service on backend alone (the queue, which holds data). PostgreSQL
    has a way out through egress for its off-site repository: README."""
    gateway = host.check_output("ip -4 route show default").split()[2]
    assert host.run(f"docker exec {CONTAINER['redis-queue']} timeout 3 bash -c '</dev/tcp/{gateway}/5000'").rc != 0


@pytest.mark.parametrize(
    ("path", "uid", "mode"),
    [
        ("/opt/connect/secrets/postgres_superuser_password", 999, 0o400),
        ("/opt/connect/secrets/postgres_owner_password", 0, 0o400),
        ("/opt/connect/secrets/redis_queue_password", 0, 0o400),
        ("/opt/connect/config/pgbouncer/userlist.txt", 70, 0o600),
        ("/opt/connect/config/redis-queue/redis.conf", 999, 0o600),
        ("/opt/connect/config/redis-cache/users.acl", 999, 0o600),
        ("/opt/connect/config/redis-queue/users.acl", 999, 0o600),
        ("/opt/connect/docker-compose.production.yml", 0, 0o640),
    ],
)
def test_secret_bearing_files_are_private(host, path, uid, mode):
    f = host.file(path)
    assert (f.uid, f.mode) == (uid, mode)


def test_no_password_recorded_in_pg_stat_statements(host):
    # The role's setup session sets the owner's password; no trace of it may be kept.
    queries = psql(host, "SELECT query FROM pg_stat_statements")
    assert secret(host, "postgres_owner_password") not in queries
    assert "alter role" not in queries.lower()


@pytest.mark.parametrize("service", ["redis-cache", "redis-queue"])
def test_redis_users_live_in_their_acl_file_with_hashed_passwords_only(host, service):
    # users.acl (ACL LOAD on a change: a password is rotated without a restart); redis.conf names it.
    conf = host.file(f"/opt/connect/config/{service}/redis.conf").content_string
    users = host.file(f"/opt/connect/config/{service}/users.acl").content_string
    assert "aclfile /usr/local/etc/redis/users.acl" in conf and "\nuser " not in conf
    names = (f"{service.replace('-', '_')}_password", "redis_admin_password", "redis_monitor_password")
    secrets = {name: secret(host, name) for name in names}
    for value in secrets.values():
        assert value not in conf and value not in users
        assert "#" + hashlib.sha256(value.encode()).hexdigest() in users
    redis = role_defaults("redis")
    expected = ["default", redis["redis_admin_user"], redis["redis_monitor_user"], "healthcheck"]
    assert sorted(line.split()[1] for line in users.splitlines() if line) == sorted(expected)
