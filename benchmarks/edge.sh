#!/usr/bin/env bash
# Requests/s and latency the demo stack sustains through nginx
# (127.0.0.1:8443 -> nginx -> app1/app2 -> PgBouncer -> PostgreSQL, Redis),
# for /api/health (PostgreSQL + both Redis) and GET /api/items (a database
# read). Needs `make demo`. Not a test: it prints figures.
#
# nginx limits each client address to 100 r/s, and every request from this
# machine comes from one address. For the duration of the run, nginx trusts
# this machine as a proxy (X-Forwarded-For), and loadgen spreads the load
# over 500 simulated client addresses; the normal configuration is put back
# at the end (also on failure).
#   benchmarks/edge.sh [SECONDS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
concurrency=${2:-16}
server=${CONNECT_BENCH_SERVER:-connect-demo}
url=${CONNECT_BENCH_URL:-https://127.0.0.1:8443}
py=.venv/bin/python
[ -x "$py" ] || py=python3
export ANSIBLE_CONFIG=$PWD/ansible.cfg PATH=$PWD/.venv/bin:$PATH

docker inspect -f '{{.State.Running}}' "$server" 2>/dev/null | grep -q true || { echo "no running $server: make demo first" >&2; exit 1; }
gateway=$(docker network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}')

restore() {
  echo "[bench] restoring nginx's normal configuration" >&2
  ansible-playbook -i inventories/demo site.yml --tags nginx >/dev/null
}
trap restore EXIT
echo "[bench] nginx trusts $gateway as a proxy for the run" >&2
ansible-playbook -i inventories/demo site.yml --tags nginx \
  -e "{\"nginx_trusted_proxies\": [\"$gateway/32\"], \"nginx_real_ip_header\": \"X-Forwarded-For\"}" >/dev/null

printf '%-28s %10s %10s %9s %9s %9s %8s\n' "endpoint" "requests" "ok r/s" "p50 ms" "p99 ms" "max ms" "failed"
for mix in health=100 get=100; do
  out=$("$py" benchmarks/loadgen.py --url "$url" --insecure --concurrency "$concurrency" --duration "$seconds" \
        --mix "$mix" --client-ips 500 --no-fail-exit 2>/dev/null)
  name=$([ "$mix" = health=100 ] && echo "GET /api/health" || echo "GET /api/items (db read)")
  echo "$out" | "$py" -c '
import json, sys
s = json.load(sys.stdin)
l = s["latency_ms"]
print("%-28s %10d %10.1f %9.1f %9.1f %9.1f %8d" % (sys.argv[1], s["requests"], s["ok_rps"], l["p50"] or 0, l["p99"] or 0, l["max"] or 0, s["failed"]))
' "$name"
done
echo "($concurrency concurrent keep-alive clients for ${seconds} s each; the limits of the demo's containers: $(grep -E '^  (nginx|app):' inventories/demo/group_vars/connect_servers/harness.yml | tr -s ' ' | tr '\n' ';'))"
