#!/usr/bin/env bash
# Lynis hardening index of a disposable server (issue 22's yardstick: >= 80).
#
#   benchmarks/lynis_index.sh [SERVER]     (default connect-demo; make demo first)
#
# Installs Debian's lynis inside the server (the package only: nothing the
# stack uses changes), runs `lynis audit system --quick`, and prints the
# index, the number of tests, and every warning and suggestion with its
# test ID, from Lynis's own report file.
set -euo pipefail
server=${1:-connect-demo}
docker container inspect "$server" >/dev/null 2>&1 || { echo "no server $server: run make demo" >&2; exit 2; }
docker exec "$server" sh -c 'command -v lynis >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null'
docker exec "$server" lynis audit system --quick --no-colors >/dev/null 2>&1 || true
report=$(docker exec "$server" cat /var/log/lynis-report.dat)
printf '%s\n' "$report" | awk -F= '
  /^hardening_index=/ {index_=$2}
  /^lynis_tests_done=/ {tests=$2}
  /^lynis_version=/ {version=$2}
  /^warning\[\]=/ {split($2, w, "|"); warnings[++nw]=w[1] ": " w[2]}
  /^suggestion\[\]=/ {split($2, s, "|"); suggestions[++ns]=s[1] ": " s[2]}
  END {
    printf "lynis %s on '"$server"': hardening index %s, %s tests\n", version, index_, tests
    printf "warnings (%d):\n", nw; for (i = 1; i <= nw; i++) print "  " warnings[i]
    printf "suggestions (%d):\n", ns; for (i = 1; i <= ns; i++) print "  " suggestions[i]
  }'
