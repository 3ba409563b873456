#!/usr/bin/env bash
# Smoke test of the harness's service images (postgres, pgbouncer, redis) on
# this machine's Docker engine, used the way the data-tier role will use the
# production images: mounted config files, a password file, data directories
# bind-mounted from root-owned host folders, everything on one network.
#   harness/images/smoke.sh
# Images: localhost:5000/connect-harness/{postgres:15-pgbackrest-2,pgbouncer:1.18,redis:7}
# (harness/images.sh builds them); override with SMOKE_POSTGRES_IMAGE,
# SMOKE_PGBOUNCER_IMAGE, SMOKE_REDIS_IMAGE. Every wait is bounded; the whole
# run takes well under a minute. Prints PASS/FAIL per check and
# "N passed, N failed"; exits non-zero on any failure. Removes its
# containers, network and files on exit.
set -uo pipefail
registry=${CONNECT_HARNESS_REGISTRY:-localhost:5000}
pg_image=${SMOKE_POSTGRES_IMAGE:-$registry/connect-harness/postgres:15-pgbackrest-2}
pgb_image=${SMOKE_PGBOUNCER_IMAGE:-$registry/connect-harness/pgbouncer:1.18}
redis_image=${SMOKE_REDIS_IMAGE:-$registry/connect-harness/redis:7}

id=smoke-$$
net=$id-net
pg=$id-postgres pgb=$id-pgbouncer rq=$id-redis-queue rc=$id-redis-cache
containers=("$pg" "$pgb" "$rq" "$rc")
work=$(mktemp -d /tmp/connect-smoke.XXXXXX)
passed=0 failed=0

# shellcheck disable=SC2317,SC2329  # called by the EXIT trap (SC2317: shellcheck < 0.10)
cleanup() {
  docker rm -f -v "${containers[@]}" >/dev/null 2>&1
  docker network rm "$net" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { printf 'PASS %s\n' "$1"; passed=$((passed + 1)); }
fail() { printf 'FAIL %s%s\n' "$1" "${2:+ ($2)}"; failed=$((failed + 1)); }
# check NAME EXPECTED ACTUAL
check() { if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "expected '$2', got '${3:0:200}'"; fi; }
finish() {
  printf '%d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
  exit
}
# dexec CONTAINER CMD...: docker exec bounded to 20 s, stderr folded in.
dexec() { timeout 20 docker exec "$@" 2>&1; }
# wait_for SECONDS CMD...: retry CMD once a second until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}
# uid of a container's main process (PID 1 inside it), read from the host.
main_uid() {
  local pid; pid=$(docker inspect -f '{{.State.Pid}}' "$1" 2>/dev/null) || return
  [ "${pid:-0}" -gt 0 ] && awk '/^Uid:/ { print $2 }' "/proc/$pid/status"
}
main_comm() {
  local pid; pid=$(docker inspect -f '{{.State.Pid}}' "$1" 2>/dev/null) || return
  [ "${pid:-0}" -gt 0 ] && cat "/proc/$pid/comm"
}
# After a section: show a container's last log lines if the section failed.
section_failed=0
section() { section_failed=$failed; }
logs_on_fail() { [ "$failed" -eq "$section_failed" ] || docker logs --tail 15 "$1" 2>&1 | sed "s/^/  [$1] /"; }

for image in "$pg_image" "$pgb_image" "$redis_image"; do
  if docker image inspect "$image" >/dev/null 2>&1 || timeout 120 docker pull -q "$image" >/dev/null 2>&1; then
    pass "image present: $image"
  else
    fail "image present: $image" "run harness/images.sh postgres pgbouncer redis"
  fi
done
[ "$failed" -eq 0 ] || finish

docker network create --internal "$net" >/dev/null || { fail "create network $net"; finish; }
subnet=$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' "$net")

# --- PostgreSQL --------------------------------------------------------------
section
pg_password="smoke-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mkdir -p "$work/pg" "$work/pgdata" "$work/initdb"
printf '%s\n' "$pg_password" >"$work/pg/password"
chmod 0600 "$work/pg/password"   # root-only: read by the entrypoint before it drops to postgres
cat >"$work/pg/postgresql.conf" <<'EOF'
listen_addresses = '*'
port = 5432
max_connections = 50
shared_buffers = 48MB
shared_preload_libraries = 'pg_stat_statements'
password_encryption = scram-sha-256
unix_socket_directories = '/var/run/postgresql'
log_connections = on
EOF
cat >"$work/pg/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
host  all all $subnet scram-sha-256
EOF
cat >"$work/initdb/10-smoke.sql" <<'EOF'
CREATE TABLE smoke_init (id int);
EOF
chmod 0644 "$work/pg/postgresql.conf" "$work/pg/pg_hba.conf" "$work/initdb/10-smoke.sql"

docker run -d --name "$pg" --network "$net" --network-alias postgres \
  -e POSTGRES_USER=connect -e POSTGRES_DB=connect \
  -e POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password \
  -v "$work/pg/password:/run/secrets/postgres_password:ro" \
  -v "$work/pg/postgresql.conf:/etc/postgresql/postgresql.conf:ro" \
  -v "$work/pg/pg_hba.conf:/etc/postgresql/pg_hba.conf:ro" \
  -v "$work/initdb:/docker-entrypoint-initdb.d:ro" \
  -v "$work/pgdata:/var/lib/postgresql/data" \
  "$pg_image" postgres -c config_file=/etc/postgresql/postgresql.conf -c hba_file=/etc/postgresql/pg_hba.conf \
  >/dev/null || fail "postgres: container starts"

# TCP on 127.0.0.1 only answers once the final server runs (init uses the socket only).
if wait_for 90 docker exec "$pg" pg_isready -q -h 127.0.0.1 -p 5432 -U connect -d connect; then
  pass "postgres: pg_isready after init"
else
  fail "postgres: pg_isready after init"
fi
pgq() { dexec "$pg" psql -X -U connect -d connect -tAc "$1"; }
check "postgres: main process runs as uid 999" 999 "$(main_uid "$pg")"
check "postgres: main process is postgres" postgres "$(main_comm "$pg")"
check "postgres: PGDATA on root-owned bind mount chowned to 999, mode 700" "999 700" "$(stat -c '%u %a' "$work/pgdata")"
check "postgres: mounted config_file in use" /etc/postgresql/postgresql.conf "$(pgq 'SHOW config_file')"
check "postgres: mounted hba_file in use" /etc/postgresql/pg_hba.conf "$(pgq 'SHOW hba_file')"
check "postgres: SHOW shared_buffers reflects mounted config" 48MB "$(pgq 'SHOW shared_buffers')"
check "postgres: POSTGRES_USER connect is superuser" t "$(pgq "SELECT rolsuper FROM pg_roles WHERE rolname = 'connect'")"
check "postgres: POSTGRES_DB connect exists, UTF8" UTF8 "$(pgq "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'connect'")"
check "postgres: /docker-entrypoint-initdb.d/*.sql ran" smoke_init "$(pgq "SELECT to_regclass('public.smoke_init')")"
check "postgres: CREATE EXTENSION pg_stat_statements" "CREATE EXTENSION" "$(pgq 'CREATE EXTENSION pg_stat_statements')"
check "postgres: pg_stat_statements collects (preloaded)" t "$(pgq 'SELECT count(*) > 0 FROM pg_stat_statements')"
verifier=$(pgq "SELECT rolpassword FROM pg_authid WHERE rolname = 'connect'")
check "postgres: password stored as SCRAM verifier" 'SCRAM-SHA-256$' "${verifier:0:14}"
check "postgres: scram login over TCP with POSTGRES_PASSWORD_FILE's password" 1 \
  "$(dexec -e PGPASSWORD="$pg_password" "$pg" psql -X -h 127.0.0.1 -U connect -d connect -tAc 'SELECT 1')"
check "postgres: wrong password refused over TCP" "authentication failed" \
  "$(dexec -e PGPASSWORD=wrong "$pg" psql -X -h 127.0.0.1 -U connect -d connect -tAc 'SELECT 1' | grep -o 'authentication failed' | head -1)"
# Restart: SIGINT (fast shutdown) as stop signal, existing PGDATA kept as is.
timeout 60 docker restart -t 30 "$pg" >/dev/null 2>&1
if wait_for 60 docker exec "$pg" pg_isready -q -h 127.0.0.1 -p 5432 -U connect -d connect; then
  pass "postgres: back after docker restart"
else
  fail "postgres: back after docker restart"
fi
check "postgres: docker stop sends SIGINT (fast shutdown)" 1 \
  "$(docker logs "$pg" 2>&1 | grep -c 'received fast shutdown request' | awk '{ print ($1 >= 1) ? 1 : 0 }')"
check "postgres: restart skips init, data kept" "Skipping initialization|smoke_init" \
  "$(docker logs "$pg" 2>&1 | grep -o 'Skipping initialization' | head -1)|$(pgq "SELECT to_regclass('public.smoke_init')")"
logs_on_fail "$pg"

# --- PgBouncer ----------------------------------------------------------------
section
mkdir -p "$work/pgb"
cat >"$work/pgb/pgbouncer.ini" <<'EOF'
[databases]
connect = host=postgres port=5432 dbname=connect

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = 5
max_client_conn = 50
reserve_pool_size = 1
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits
admin_users = connect
EOF
printf '"connect" "%s"\n' "$verifier" >"$work/pgb/userlist.txt"
chmod 0644 "$work/pgb/pgbouncer.ini"
chown 70:70 "$work/pgb/userlist.txt" && chmod 0600 "$work/pgb/userlist.txt"

docker run -d --name "$pgb" --network "$net" --network-alias pgbouncer \
  -v "$work/pgb/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro" \
  -v "$work/pgb/userlist.txt:/etc/pgbouncer/userlist.txt:ro" \
  "$pgb_image" >/dev/null || fail "pgbouncer: container starts"

if wait_for 30 docker exec "$pgb" pg_isready -q -h 127.0.0.1 -p 6432; then
  pass "pgbouncer: healthcheck pg_isready -h 127.0.0.1 -p 6432"
else
  fail "pgbouncer: healthcheck pg_isready -h 127.0.0.1 -p 6432"
fi
check "pgbouncer: main process runs as uid 70" 70 "$(main_uid "$pgb")"
check "pgbouncer: main process is pgbouncer" pgbouncer "$(main_comm "$pgb")"
# From another container, over the network, with the password.
check "pgbouncer: SELECT 1 through pgbouncer:6432 (scram, transaction pool)" 1 \
  "$(dexec -e PGPASSWORD="$pg_password" "$pg" psql -X "host=pgbouncer port=6432 user=connect dbname=connect" -tAc 'SELECT 1')"
check "pgbouncer: wrong password refused" "authentication failed" \
  "$(dexec -e PGPASSWORD=wrong "$pg" psql -X "host=pgbouncer port=6432 user=connect dbname=connect" -tAc 'SELECT 1' | grep -o 'authentication failed' | head -1)"
check "pgbouncer: admin console reports pool_mode" transaction \
  "$(dexec -e PGPASSWORD="$pg_password" "$pg" psql -X "host=pgbouncer port=6432 user=connect dbname=pgbouncer" -tA -F ' ' -c 'SHOW CONFIG' | awk '$1 == "pool_mode" { print $2 }')"
logs_on_fail "$pgb"

# --- Redis --------------------------------------------------------------------
section
redis_password="smoke-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mkdir -p "$work/redis" "$work/redis-data"
cat >"$work/redis/redis.conf" <<EOF
port 6380
bind 0.0.0.0
protected-mode yes
requirepass $redis_password
appendonly yes
appendfsync everysec
dir /data
maxmemory 64mb
maxmemory-policy noeviction
EOF
chmod 0644 "$work/redis/redis.conf"

# Queue instance: the role's form (mounted config file, data on a bind mount).
docker run -d --name "$rq" --network "$net" --network-alias redis-queue \
  -v "$work/redis/redis.conf:/usr/local/etc/redis/redis.conf:ro" \
  -v "$work/redis-data:/data" \
  "$redis_image" redis-server /usr/local/etc/redis/redis.conf >/dev/null || fail "redis: container starts"
# Cache instance: the spec's form (options only, first argument "--...").
docker run -d --name "$rc" --network "$net" --network-alias redis-cache \
  "$redis_image" --maxmemory 32mb --maxmemory-policy allkeys-lru --save '' --appendonly no \
  >/dev/null || fail "redis-cache: container starts"

rcli() { dexec "$rq" redis-cli -p 6380 -a "$redis_password" --no-auth-warning "$@"; }
if wait_for 30 docker exec "$rq" redis-cli -p 6380 -a "$redis_password" --no-auth-warning ping; then
  pass "redis: ping on 6380 with requirepass"
else
  fail "redis: ping on 6380 with requirepass"
fi
check "redis: main process runs as uid 999" 999 "$(main_uid "$rq")"
check "redis: main process is redis-server" redis-server "$(main_comm "$rq")"
check "redis: /data bind mount chowned to 999" 999 "$(stat -c '%u' "$work/redis-data")"
check "redis: unauthenticated command refused" NOAUTH "$(dexec "$rq" redis-cli -p 6380 get smoke | cut -c1-6)"
check "redis: SET" OK "$(rcli set smoke:key hello)"
check "redis: GET" hello "$(rcli get smoke:key)"
aof=
for _ in 1 2 3 4 5; do
  aof=$(find "$work/redis-data" -name 'appendonly*.aof*' -type f 2>/dev/null | head -1)
  [ -n "$aof" ] && break
  sleep 1
done
check "redis: appendonly file under /data" yes "$([ -n "$aof" ] && echo yes || echo "no (/data: $(find "$work/redis-data" | tr '\n' ' '))")"
timeout 30 docker restart -t 10 "$rq" >/dev/null 2>&1
wait_for 30 docker exec "$rq" redis-cli -p 6380 -a "$redis_password" --no-auth-warning ping
check "redis: key survives restart (AOF)" hello "$(rcli get smoke:key)"
check "redis-cache: options-only command runs redis-server" allkeys-lru \
  "$(dexec "$rc" redis-cli config get maxmemory-policy | tail -1)"
check "redis-cache: reachable from another container without a password (protected-mode off by default, as the official image)" PONG \
  "$(dexec "$rq" redis-cli -h redis-cache -p 6379 ping)"
check "redis-cache: main process runs as uid 999" 999 "$(main_uid "$rc")"
logs_on_fail "$rq"

finish
