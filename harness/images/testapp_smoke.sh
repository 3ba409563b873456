#!/usr/bin/env bash
# Smoke test of the test app (connect-harness/testapp) and the nginx stand-in
# (connect-harness/nginx) on this machine's Docker engine, wired as the app
# roles will wire them: nginx -> app1/app2 -> PgBouncer (transaction pool) ->
# PostgreSQL, two Redis instances, a scraper worker; all on one throwaway
# internal network. Checks the app contract (docs/app-contract.md): health,
# items, slow, static, auth, crypto, jobs -> scraper, business metrics
# (/metrics: the same database totals on every instance, 503 while PgBouncer
# does not answer, 404 through nginx), releases v2,
# v3-broken-health, v4-broken-migration, SIGTERM drain; and nginx in front
# (http, https + http2, stub_status, round robin, large bodies, SIGQUIT).
#   harness/images/testapp_smoke.sh
# Images come from harness/images.sh (testapp, nginx, postgres, pgbouncer,
# redis); override the registry with CONNECT_HARNESS_REGISTRY. Bounded: the
# whole run is killed after TAPP_SMOKE_TIMEOUT s (default 180); it normally
# takes under a minute. Prints PASS/FAIL per check and "N passed, N failed";
# exits non-zero on any failure. Removes its tapp-* containers, network and
# files on exit.
set -uo pipefail
registry=${CONNECT_HARNESS_REGISTRY:-localhost:5000}
app_repo=$registry/connect-harness/testapp
nginx_image=$registry/connect-harness/nginx:1.22
pg_image=$registry/connect-harness/postgres:15-pgbackrest-2
pgb_image=$registry/connect-harness/pgbouncer:1.18
redis_image=$registry/connect-harness/redis:7
limit=${TAPP_SMOKE_TIMEOUT:-180}

id=tapp-smoke-$$
net=$id-net
pg=$id-postgres pgb=$id-pgbouncer rc=$id-redis-cache rq=$id-redis-queue
client=$id-client app1=$id-app1 app2=$id-app2 app3=$id-app3 scraper=$id-scraper nginx=$id-nginx
containers=("$pg" "$pgb" "$rc" "$rq" "$client" "$app1" "$app2" "$app3" "$scraper" "$nginx")
work=$(mktemp -d /tmp/tapp-smoke.XXXXXX)
passed=0 failed=0 watchdog=

# shellcheck disable=SC2317,SC2329  # called by the EXIT trap (SC2317: shellcheck < 0.10)
cleanup() {
  [ -z "$watchdog" ] || kill "$watchdog" 2>/dev/null
  docker rm -f -v "${containers[@]}" >/dev/null 2>&1
  docker network rm "$net" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "FAIL time limit or interrupt"; failed=$((failed + 1)); printf "%d passed, %d failed\n" "$passed" "$failed"; exit 124' TERM
trap 'exit 130' INT
# Watchdog; output to /dev/null so that it never holds a caller's pipe open.
( sleep "$limit" & s=$!; trap 'kill $s; exit 0' TERM; wait $s; kill -TERM $$ ) >/dev/null 2>&1 &
watchdog=$!

pass() { printf 'PASS %s\n' "$1"; passed=$((passed + 1)); }
fail() { printf 'FAIL %s%s\n' "$1" "${2:+ ($2)}"; failed=$((failed + 1)); }
# check NAME EXPECTED ACTUAL
check() { if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "expected '$2', got '${3:0:300}'"; fi; }
# check_re NAME ERE ACTUAL
check_re() { if [[ "$3" =~ $2 ]]; then pass "$1"; else fail "$1" "expected /$2/, got '${3:0:300}'"; fi; }
finish() {
  printf '%d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
  exit
}
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
dexec() { timeout 30 docker exec "$@" 2>&1; }
# curl from the client container on the network: hc ARGS... (20 s cap)
hc() { timeout 30 docker exec "$client" curl -sS --max-time 20 "$@" 2>&1; }
# code URL [ARGS]: HTTP status only ("000" when no answer)
code() { local u=$1; shift; timeout 30 docker exec "$client" curl -s --max-time 20 -o /dev/null -w '%{http_code}' "$@" "$u"; }
# jf FIELD: a top-level field of the JSON on stdin ("" if not JSON)
jf() { python3 -c 'import json, sys
try: v = json.load(sys.stdin).get(sys.argv[1], "")
except Exception: v = ""
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$1"; }
psql_pg() { dexec "$pg" psql -X -U connect -d connect -tAc "$1"; }
# Predicates for wait_for (evaluated on every try).
# shellcheck disable=SC2317,SC2329  # called through wait_for (SC2317: shellcheck < 0.10)
{
  http_is() { [ "$(code "$2")" = "$1" ]; }
  http_answers() { [ "$(code "$1")" != 000 ]; }
  scraped() { [ -n "$(psql_pg "SELECT 1 FROM scrape_results WHERE job_id = '$1'")" ]; }
  # totals URL: the database totals of a /metrics answer, "name=value " each (sessions are per instance)
  totals() { hc "$1" | awk '/^connect_/ && !/^connect_active_sessions / { printf "%s=%s ", $1, $2 }'; }
  stopped() { [ "$(docker inspect -f '{{.State.Running}}' "$1")" = false ]; }
}
pid_of() { docker inspect -f '{{.State.Pid}}' "$1" 2>/dev/null; }
main_uid() {
  local pid; pid=$(pid_of "$1") || return
  [ "${pid:-0}" -gt 0 ] && awk '/^Uid:/ { print $2 }' "/proc/$pid/status"
}
section_failed=0
section() { section_failed=$failed; }
logs_on_fail() { [ "$failed" -eq "$section_failed" ] || docker logs --tail 20 "$1" 2>&1 | sed "s/^/  [${1#"$id-"}] /"; }

# --- images -------------------------------------------------------------------
for image in "$app_repo:v1" "$app_repo:v2" "$app_repo:v3-broken-health" "$app_repo:v4-broken-migration" \
             "$nginx_image" "$pg_image" "$pgb_image" "$redis_image"; do
  if docker image inspect "$image" >/dev/null 2>&1 || timeout 120 docker pull -q "$image" >/dev/null 2>&1; then
    pass "image present: $image"
  else
    fail "image present: $image" "run harness/images.sh testapp nginx postgres pgbouncer redis"
  fi
done
[ "$failed" -eq 0 ] || finish

docker network create --internal "$net" >/dev/null || { fail "create network $net"; finish; }
subnet=$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' "$net")

# --- data tier, configured as in harness/images/smoke.sh -----------------------
section
pg_password="tapp$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
redis_password="tapp$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
encryption_key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$work/pg" "$work/pgb" "$work/nginx/conf.d" "$work/nginx/certs"
cat >"$work/pg/postgresql.conf" <<'EOF'
listen_addresses = '*'
port = 5432
max_connections = 50
shared_buffers = 32MB
password_encryption = scram-sha-256
unix_socket_directories = '/var/run/postgresql'
EOF
cat >"$work/pg/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
host  all all $subnet scram-sha-256
EOF
chmod 0644 "$work/pg/postgresql.conf" "$work/pg/pg_hba.conf"
docker run -d --name "$pg" --network "$net" --network-alias postgres \
  -e POSTGRES_USER=connect -e POSTGRES_DB=connect -e POSTGRES_PASSWORD="$pg_password" \
  -v "$work/pg/postgresql.conf:/etc/postgresql/postgresql.conf:ro" \
  -v "$work/pg/pg_hba.conf:/etc/postgresql/pg_hba.conf:ro" \
  "$pg_image" postgres -c config_file=/etc/postgresql/postgresql.conf -c hba_file=/etc/postgresql/pg_hba.conf \
  >/dev/null || fail "postgres: container starts"
docker run -d --name "$rc" --network "$net" --network-alias redis-cache "$redis_image" \
  --port 6379 --requirepass "$redis_password" --maxmemory 32mb --maxmemory-policy allkeys-lru --save '' --appendonly no \
  >/dev/null || fail "redis-cache: container starts"
docker run -d --name "$rq" --network "$net" --network-alias redis-queue "$redis_image" \
  --port 6380 --requirepass "$redis_password" --maxmemory 32mb --maxmemory-policy noeviction --appendonly yes \
  >/dev/null || fail "redis-queue: container starts"
# The client: curl on the network (the test app image has it).
docker run -d --name "$client" --network "$net" "$app_repo:v1" sleep 600 >/dev/null || fail "client: container starts"

if wait_for 90 docker exec "$pg" pg_isready -q -h 127.0.0.1 -p 5432 -U connect -d connect; then
  pass "postgres: ready"
else
  fail "postgres: ready"
fi
verifier=$(psql_pg "SELECT rolpassword FROM pg_authid WHERE rolname = 'connect'")
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
max_client_conn = 100
EOF
printf '"connect" "%s"\n' "$verifier" >"$work/pgb/userlist.txt"
chmod 0644 "$work/pgb/pgbouncer.ini"
chown 70:70 "$work/pgb/userlist.txt" && chmod 0600 "$work/pgb/userlist.txt"
docker run -d --name "$pgb" --network "$net" --network-alias pgbouncer \
  -v "$work/pgb/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro" \
  -v "$work/pgb/userlist.txt:/etc/pgbouncer/userlist.txt:ro" \
  "$pgb_image" >/dev/null || fail "pgbouncer: container starts"
if wait_for 30 docker exec "$pgb" pg_isready -q -h 127.0.0.1 -p 6432; then
  pass "pgbouncer: ready"
else
  fail "pgbouncer: ready"
fi
for r in "$rc:6379" "$rq:6380"; do
  if wait_for 30 docker exec "${r%:*}" redis-cli -p "${r#*:}" -a "$redis_password" --no-auth-warning ping; then
    pass "${r#"$id-"}: ready" ; else fail "${r#"$id-"}: ready"; fi
done
logs_on_fail "$pg"; logs_on_fail "$pgb"
[ "$failed" -eq 0 ] || finish

# Environment of every app/scraper/migrate container, as a role would pass it.
cat >"$work/app.env" <<EOF
NODE_ENV=production
DATABASE_URL=postgres://connect:$pg_password@pgbouncer:6432/connect
REDIS_CACHE_URL=redis://:$redis_password@redis-cache:6379/0
REDIS_QUEUE_URL=redis://:$redis_password@redis-queue:6380/0
ENCRYPTION_KEY=$encryption_key
EOF
run_app() { # run_app NAME ALIAS IMAGE-TAG [docker run args...]
  local name=$1 alias=$2 tag=$3; shift 3
  docker run -d --name "$name" --network "$net" --network-alias "$alias" --env-file "$work/app.env" \
    -e INSTANCE="$alias" "$@" "$app_repo:$tag" >/dev/null
}
migrate() { # migrate IMAGE-TAG: output, then "exit=N"
  timeout 60 docker run --rm --network "$net" --env-file "$work/app.env" "$app_repo:$1" python3 /app/migrate.py 2>&1
  echo "exit=$?"
}

# --- migrations -------------------------------------------------------------------
out=$(migrate v1)
check_re "migrate v1: exit 0, applies the schema" 'applied: 001_items, 002_scrape_results.*exit=0' "$(tr '\n' ' ' <<<"$out")"
check "migrate v1: tables items, scrape_results exist" "items|scrape_results" \
  "$(psql_pg "SELECT to_regclass('public.items')")|$(psql_pg "SELECT to_regclass('public.scrape_results')")"
check "migrate v1: tables users, matches and scrape_results.result exist (the metrics')" "users|matches|success" \
  "$(psql_pg "SELECT to_regclass('public.users')")|$(psql_pg "SELECT to_regclass('public.matches')")|$(psql_pg \
     "SELECT column_default FROM information_schema.columns WHERE table_name = 'scrape_results' AND column_name = 'result'" | tr -d "'" | cut -d: -f1)"
migrations=$(psql_pg 'SELECT count(*) FROM schema_migrations')
out=$(migrate v1)
check_re "migrate v1 again: idempotent, exit 0" 'up to date.*exit=0' "$(tr '\n' ' ' <<<"$out")"
out=$(timeout 60 docker run --rm --network "$net" --env-file "$work/app.env" \
  -e DIRECT_URL="postgres://connect:$pg_password@postgres:5432/connect" "$app_repo:v1" python3 /app/migrate.py 2>&1; echo "exit=$?")
check_re "migrate v1 with DIRECT_URL (straight to postgres:5432): exit 0" 'up to date.*exit=0' "$(tr '\n' ' ' <<<"$out")"
out=$(migrate v4-broken-migration)
check_re "migrate v4-broken-migration: exit 1" 'BROKEN=migration.*exit=1' "$(tr '\n' ' ' <<<"$out")"
check "migrate v4-broken-migration: changed nothing" "$migrations" "$(psql_pg 'SELECT count(*) FROM schema_migrations')"

# --- app v1 -----------------------------------------------------------------------
section
run_app "$app1" app1 v1 || fail "app1 (v1): container starts"
if wait_for 30 http_is 200 http://app1:3001/api/health; then
  pass "app1 (v1): GET /api/health answers 200"
else
  fail "app1 (v1): GET /api/health answers 200"
fi
h=$(hc http://app1:3001/api/health)
check "app1: health status healthy" healthy "$(jf status <<<"$h")"
check "app1: health version v1 (baked at build)" v1 "$(jf version <<<"$h")"
check "app1: health instance from INSTANCE" app1 "$(jf instance <<<"$h")"
check_re "app1: health has uptime and ISO timestamp" '^[0-9.]+ [0-9]{4}-[0-9]{2}-[0-9]{2}T' "$(jf uptime <<<"$h") $(jf timestamp <<<"$h")"
hdr=$(hc -D - -o /dev/null http://app1:3001/api/items | tr -d '\r')
check_re "app1: X-App-Version and X-App-Instance headers" 'X-App-Version: v1.*X-App-Instance: app1' "$(tr '\n' ' ' <<<"$hdr")"
check "app1: main process runs as uid 1001" 1001 "$(main_uid "$app1")"
check "app1: healthcheck python3 /app/healthcheck.py" 0 "$(docker exec "$app1" python3 /app/healthcheck.py >/dev/null 2>&1; echo $?)"
check "app1: healthcheck curl -f http://localhost:3001/api/health" 0 \
  "$(docker exec "$app1" curl -sf -o /dev/null http://localhost:3001/api/health; echo $?)"
check "app1: HTTP/1.1 keep-alive (2 requests, 1 connection)" "1 0 " \
  "$(hc -o /dev/null -o /dev/null -w '%{num_connects} ' http://app1:3001/api/health http://app1:3001/api/items)"
item="tapp-item-$$"
r=$(hc -w '\n%{http_code}' -H 'Content-Type: application/json' -d "{\"name\":\"$item\"}" http://app1:3001/api/items)
check "app1: POST /api/items answers 201 with the item" "201 $item" "$(tail -1 <<<"$r") $(head -1 <<<"$r" | jf name)"
check_re "app1: GET /api/items lists it" "\"name\": \"$item\"" "$(hc http://app1:3001/api/items)"
r=$(hc -o /dev/null -w '%{http_code} %{time_total}' 'http://app1:3001/api/slow?ms=500')
check_re "app1: GET /api/slow?ms=500 answers 200 after >= 0.5 s" '^200 (0\.[5-9]|[1-9])' "$r"
r=$(hc -D - 'http://app1:3001/_next/static/app.js' | tr -d '\r')
check_re "app1: GET /_next/static/app.js (javascript, immutable, v1)" \
  'Content-Type: application/javascript.*max-age=31536000, immutable.*Connect test app v1' "$(tr '\n' ' ' <<<"$r")"
r=$(hc -w '\n%{http_code}' -H 'Content-Type: application/json' -d '{"email":"a@b.c","password":"x"}' http://app1:3001/api/auth/login)
check_re "app1: POST /api/auth/login answers 200 with a token" '^200 fake-' "$(tail -1 <<<"$r") $(head -1 <<<"$r" | jf token)"
ct=$(hc -H 'Content-Type: application/json' -d '{"brn":"123-45-67890"}' http://app1:3001/api/crypto/brn | jf ciphertext)
check "app1: AES-256-GCM encrypt/decrypt of a business registration number" "123-45-67890" \
  "$(hc -H 'Content-Type: application/json' -d "{\"ciphertext\":\"$ct\"}" http://app1:3001/api/crypto/brn/decrypt | jf brn)"
r=$(hc -w '\n%{http_code}' -H 'Content-Type: application/json' -d '{"email":"tapp@example.com","name":"T"}' http://app1:3001/api/register)
user=$(head -1 <<<"$r" | jf id)
check_re "app1: POST /api/register answers 201 with the user and a token" '^201 [0-9]+ fake-' "$(tail -1 <<<"$r") $user $(head -1 <<<"$r" | jf token)"
check "app1: POST /api/register again with that e-mail answers 409" 409 \
  "$(code http://app1:3001/api/register -H 'Content-Type: application/json' -d '{"email":"TAPP@example.com"}')"
r=$(hc -w '\n%{http_code}' -H 'Content-Type: application/json' -d "{\"user_id\":$user,\"program\":\"tips\",\"count\":2}" http://app1:3001/api/matches)
check "app1: POST /api/matches answers 201 with 2 matches" "201 2" "$(tail -1 <<<"$r") $(head -1 <<<"$r" | jf count)"
sub=$(hc -H 'Content-Type: application/json' -d '{"org_name":"tapp-org"}' http://app1:3001/api/subscriptions | jf id)
r=$(hc -w '\n%{http_code}' -X POST "http://app1:3001/api/subscriptions/$sub/upgrade")
check "app1: a free subscription upgraded to pro (a conversion)" "200 pro" "$(tail -1 <<<"$r") $(head -1 <<<"$r" | jf plan)"
check "app1: upgrading it again answers 409" 409 "$(code "http://app1:3001/api/subscriptions/$sub/upgrade" -X POST)"
logs_on_fail "$app1"

# --- scraper ------------------------------------------------------------------------
section
docker run -d --name "$scraper" --network "$net" --env-file "$work/app.env" -e INSTANCE=scraper1 \
  -e SCRAPER_CONCURRENCY=2 -e SCRAPER_RATE_LIMIT_PER_MINUTE=10 -e SCRAPER_RETRIES=3 \
  -e SCRAPER_SCHEDULE=09:00,15:00 -e SCRAPER_BACKOFF_MS=100 \
  "$app_repo:v1" python3 /app/scraper.py >/dev/null || fail "scraper: container starts"
r=$(hc -w '\n%{http_code}' -H 'Content-Type: application/json' -d '{"url":"https://www.iitp.kr/notice/1","agency":"iitp"}' http://app1:3001/api/jobs)
job=$(head -1 <<<"$r" | jf id)
check_re "app1: POST /api/jobs answers 202 with a job id" '^202 [0-9a-f]{32}$' "$(tail -1 <<<"$r") $job"
r=$(hc -H 'Content-Type: application/json' -d '{"url":"https://www.iitp.kr/notice/2","agency":"iitp","fail":1}' http://app1:3001/api/jobs)
job2=$(jf id <<<"$r")
if wait_for 30 scraped "$job"; then
  pass "scraper: job from connect:jobs recorded in scrape_results"
else
  fail "scraper: job from connect:jobs recorded in scrape_results"
fi
check "scraper: row has url and worker" "https://www.iitp.kr/notice/1|scraper1" \
  "$(psql_pg "SELECT url || '|' || split_part(worker, '/', 1) FROM scrape_results WHERE job_id = '$job'")"
check "app1: GET /api/jobs/<id> reports it done" "done" "$(hc "http://app1:3001/api/jobs/$job" | jf status)"
wait_for 20 scraped "$job2"
check "scraper: a failing job is retried (done on attempt 2)" 2 \
  "$(psql_pg "SELECT attempts FROM scrape_results WHERE job_id = '$job2'")"
job3=$(hc -H 'Content-Type: application/json' -d '{"url":"https://www.iitp.kr/notice/3","agency":"other","fail":99}' http://app1:3001/api/jobs | jf id)
wait_for 20 scraped "$job3"
check "scraper: a job failing every attempt is recorded as a failure after 3" "3|failure|failed" \
  "$(psql_pg "SELECT attempts || '|' || result FROM scrape_results WHERE job_id = '$job3'")|$(hc "http://app1:3001/api/jobs/$job3" | jf status)"
check_re "scraper: logs its settings (concurrency, rate limit, retries, schedule)" \
  'concurrency=2 rate_limit_per_minute=10 retries=3 schedule_kst=09:00,15:00' "$(docker logs "$scraper" 2>&1 | head -5 | tr '\n' ' ')"
if wait_for 10 docker exec "$scraper" python3 /app/healthcheck.py scraper; then
  pass "scraper: healthcheck python3 /app/healthcheck.py scraper"
else
  fail "scraper: healthcheck python3 /app/healthcheck.py scraper"
fi
t0=$SECONDS
timeout 30 docker stop -t 20 "$scraper" >/dev/null 2>&1
check "scraper: SIGTERM stops it with exit 0 within 10 s" "0 yes" \
  "$(docker inspect -f '{{.State.ExitCode}}' "$scraper") $([ $((SECONDS - t0)) -le 10 ] && echo yes || echo no)"
logs_on_fail "$scraper"

# --- business metrics (GET /metrics) --------------------------------------------------
section
expected_totals='connect_user_registrations_total=1 connect_funding_matches_generated_total=2 '
expected_totals+='connect_scraping_runs_total{result="success"}=2 connect_scraping_runs_total{result="failure"}=1 '
expected_totals+='connect_subscription_conversions_total=1 '
check_re "app1: GET /metrics is Prometheus text (version 0.0.4)" 'Content-Type: text/plain; version=0\.0\.4' \
  "$(hc -D - -o /dev/null http://app1:3001/metrics | tr -d '\r' | tr '\n' ' ')"
check "app1: /metrics totals from the database" "$expected_totals" "$(totals http://app1:3001/metrics)"
check_re "app1: /metrics has HELP and TYPE, active sessions (login, register)" \
  '# TYPE connect_scraping_runs_total counter.*# TYPE connect_active_sessions gauge connect_active_sessions [1-9]' \
  "$(hc http://app1:3001/metrics | tr '\n' ' ')"
logs_on_fail "$app1"

# --- releases v2 and v3-broken-health ----------------------------------------------------
section
run_app "$app2" app2 v2 || fail "app2 (v2): container starts"
run_app "$app3" app3 v3-broken-health || fail "app3 (v3-broken-health): container starts"
wait_for 30 http_is 200 http://app2:3001/api/health
h=$(hc http://app2:3001/api/health)
check "app2 (v2): health 200 reports version v2" "healthy v2 app2" "$(jf status <<<"$h") $(jf version <<<"$h") $(jf instance <<<"$h")"
docker pause "$pgb" >/dev/null
r=$(hc -o /dev/null -w '%{http_code} %{time_total}' http://app2:3001/metrics)
docker unpause "$pgb" >/dev/null
check_re "app2: /metrics answers 503 within 5 s while PgBouncer hangs" '^503 [0-4]\.' "$r"
check "app2: /metrics once PgBouncer is back: the same totals as app1" "$expected_totals" "$(totals http://app2:3001/metrics)"
wait_for 30 http_answers http://app3:3001/api/health
r=$(hc -w '\n%{http_code}' http://app3:3001/api/health)
check "app3 (v3-broken-health): health answers 503 unhealthy" "503 unhealthy" "$(tail -1 <<<"$r") $(head -1 <<<"$r" | jf status)"
check "app3 (v3-broken-health): healthcheck.py exits 1" 1 "$(docker exec "$app3" python3 /app/healthcheck.py >/dev/null 2>&1; echo $?)"
check "app3 (v3-broken-health): other endpoints still work" 200 "$(code http://app3:3001/api/items)"
check "app (v1) with APP_VERSION=v9 reports v9" v9 \
  "$(timeout 30 docker run --rm --network "$net" --env-file "$work/app.env" -e APP_VERSION=v9 "$app_repo:v1" \
     python3 -c 'import common; print(common.VERSION)' 2>&1)"
check "app with an invalid ENCRYPTION_KEY refuses to start (exit 1)" 1 \
  "$(timeout 30 docker run --rm --network "$net" --env-file "$work/app.env" -e ENCRYPTION_KEY=short "$app_repo:v1" >/dev/null 2>&1; echo $?)"
logs_on_fail "$app2"; logs_on_fail "$app3"

# --- nginx in front ---------------------------------------------------------------------
section
if timeout 60 docker run --rm -v "$work/nginx/certs:/certs" "$nginx_image" \
     openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=connect.test \
     -keyout /certs/tls.key -out /certs/tls.crt >/dev/null 2>&1; then
  pass "nginx image: openssl makes a self-signed certificate"
else
  fail "nginx image: openssl makes a self-signed certificate"
fi
chmod 0644 "$work/nginx/certs/"* 2>/dev/null
cat >"$work/nginx/conf.d/default.conf" <<'EOF'
limit_req_zone $binary_remote_addr zone=general:1m rate=100r/s;
upstream connect_app {
    server app1:3001 max_fails=1 fail_timeout=5s;
    server app2:3001 max_fails=1 fail_timeout=5s;
    keepalive 16;
    keepalive_timeout 4s;  # below the app's 5 s idle keep-alive timeout
}
server {
    listen 80;
    listen 443 ssl http2;
    server_name _;
    ssl_certificate     /etc/nginx/certs/tls.crt;
    ssl_certificate_key /etc/nginx/certs/tls.key;
    set_real_ip_from 172.16.0.0/12;
    real_ip_header X-Forwarded-For;
    client_max_body_size 10m;
    location = /nginx_status { stub_status; }
    location / {
        limit_req zone=general burst=200 nodelay;
        proxy_pass http://connect_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_next_upstream error timeout http_502;
    }
}
EOF
chmod 0644 "$work/nginx/conf.d/default.conf"
docker run -d --name "$nginx" --network "$net" --network-alias nginx \
  -v "$work/nginx/conf.d/default.conf:/etc/nginx/conf.d/default.conf:ro" \
  -v "$work/nginx/certs:/etc/nginx/certs:ro" \
  "$nginx_image" >/dev/null || fail "nginx: container starts"
if wait_for 20 http_is 200 http://nginx/api/health; then
  pass "nginx: GET /api/health through nginx answers 200"
else
  fail "nginx: GET /api/health through nginx answers 200"
fi
check_re "nginx: nginx -t accepts the config" 'test is successful' "$(dexec "$nginx" nginx -t)"
check "nginx: STOPSIGNAL SIGQUIT, CMD nginx -g 'daemon off;'" "SIGQUIT [nginx -g daemon off;]" \
  "$(docker inspect -f '{{.Config.StopSignal}} {{.Config.Cmd}}' "$nginx")"
check "nginx: master runs as root" 0 "$(main_uid "$nginx")"
npid=$(pid_of "$nginx")
read -ra kids <"/proc/$npid/task/$npid/children" 2>/dev/null
wuid=$(for c in "${kids[@]}"; do awk '/^Uid:/ { print $2 }' "/proc/$c/status"; done | sort -u | tr '\n' ' ')
check "nginx: workers run as nginx (uid 101)" "101 " "$wuid"
seen=$(for _ in 1 2 3 4; do hc -D - -o /dev/null http://nginx/api/health | tr -d '\r' | awk -F': ' 'tolower($1) == "x-app-instance" { print $2 }'; done | sort -u | tr '\n' ' ')
check "nginx: round robin over app1 and app2" "app1 app2 " "$seen"
check "nginx: HTTPS with HTTP/2" "200 2" "$(hc -k --http2 -o /dev/null -w '%{http_code} %{http_version}' https://nginx/api/health)"
check_re "nginx: stub_status" '^Active connections: [0-9]+' "$(hc http://nginx/nginx_status)"
check "nginx: /metrics is not served through a proxy (404)" 404 "$(code http://nginx/metrics)"
head -c 200000 /dev/zero | tr '\0' a | sed 's/^/{"pad":"/; s/$/"}/' >"$work/big.json"
docker cp "$work/big.json" "$client:/tmp/big.json" >/dev/null 2>&1
check "nginx: 200 KB request body (temp file as worker user) proxied" 200 \
  "$(code http://nginx/api/auth/login -H 'Content-Type: application/json' --data-binary @/tmp/big.json)"
check "nginx: static file through nginx" 200 "$(code http://nginx/_next/static/app.js)"
check_re "nginx: access log on the container's stdout" '"GET /api/health HTTP/1.1" 200' "$(docker logs "$nginx" 2>/dev/null | tail -20)"
logs_on_fail "$nginx"

# --- SIGTERM drain (app1, behind nginx) ---------------------------------------------------
section
timeout 40 docker exec "$client" curl -s --max-time 30 -o /dev/null -w '%{http_code} %{time_total}' \
  'http://app1:3001/api/slow?ms=2000' >"$work/drain.out" 2>&1 &
slow_pid=$!
sleep 0.7
t0=$SECONDS
docker kill -s TERM "$app1" >/dev/null
sleep 0.5
check "app1 draining: new connections refused" 000 "$(code http://app1:3001/api/health --max-time 2)"
codes=$(for _ in 1 2 3 4 5 6; do code http://nginx/api/health; echo -n ' '; done)
check "nginx while app1 drains: every request answered 200" "200 200 200 200 200 200 " "$codes"
wait "$slow_pid"
check_re "app1 draining: the in-flight 2 s request finished with 200" '^200 (1\.[5-9]|[2-9])' "$(cat "$work/drain.out")"
wait_for 15 stopped "$app1"
check "app1: exited with code 0 after the drain" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$app1")"
check "app1: drain took well under the 30 s bound" yes "$([ $((SECONDS - t0)) -le 10 ] && echo yes || echo no)"
check_re "app1: logs the drain" 'SIGTERM received: draining.*drained' "$(docker logs "$app1" 2>&1 | tail -30 | tr '\n' ' ')"
logs_on_fail "$app1"
t0=$SECONDS
timeout 30 docker stop -t 20 "$app2" >/dev/null 2>&1
check "app2: idle app stops on SIGTERM with exit 0 within 3 s" "0 yes" \
  "$(docker inspect -f '{{.State.ExitCode}}' "$app2") $([ $((SECONDS - t0)) -le 3 ] && echo yes || echo no)"
timeout 30 docker stop -t 20 "$nginx" >/dev/null 2>&1
check "nginx: docker stop (SIGQUIT, graceful) exits 0" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$nginx")"

finish
