#!/usr/bin/env bash
# Let's Encrypt's own ACME test server on this machine, for the letsencrypt
# part of the tests: Debian's pebble 2.4 on :14000 (HTTPS, a certificate for
# the name `acme-test` signed by a test CA in /var/lib/connect-harness/acme/ca.pem),
# validating HTTP-01 on port 80 of whatever name it is asked for, which its
# mock DNS (pebble-challtestsrv, 127.0.0.1:8053) answers with the server's
# address.
# Usage: harness/acme-test.sh start <server-address> | stop
set -euo pipefail
dir=/var/lib/connect-harness/acme
log() { printf '[acme-test] %s\n' "$*"; }

stop() {
  local pidfile pid
  for pidfile in "$dir"/pebble.pid "$dir"/challtestsrv.pid; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$pidfile"
  done
}

start() {
  local address=$1
  command -v pebble >/dev/null 2>&1 || {
    log "installing pebble"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pebble >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pebble >/dev/null; }
  }
  install -d -m 0700 "$dir"
  if [ ! -s "$dir/ca.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=connect harness ACME test CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=acme-test" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
      -extfile <(printf 'subjectAltName=DNS:acme-test,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
      -out "$dir/server.pem" 2>/dev/null
  fi
  chmod 0644 "$dir/ca.pem"
  cat >"$dir/pebble.json" <<JSON
{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "127.0.0.1:15000",
            "certificate": "$dir/server.pem", "privateKey": "$dir/server.key",
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
  stop
  log "mock DNS answering every name with $address"
  setsid pebble-challtestsrv -defaultIPv4 "$address" -defaultIPv6 "" -dns01 127.0.0.1:8053 -http01 "" -https01 "" \
    -tlsalpn01 "" -management 127.0.0.1:8055 >/var/log/connect-acme-dns.log 2>&1 < /dev/null &
  echo $! >"$dir/challtestsrv.pid"
  log "pebble on :14000"
  # No random sleeps before validation, no refused nonces: the tests' time is measured.
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 setsid pebble -config "$dir/pebble.json" -dnsserver 127.0.0.1:8053 \
    >/var/log/connect-acme.log 2>&1 < /dev/null &
  echo $! >"$dir/pebble.pid"
  for _ in $(seq 1 40); do
    curl -fsS -o /dev/null --cacert "$dir/ca.pem" --resolve acme-test:14000:127.0.0.1 https://acme-test:14000/dir 2>/dev/null && break
    sleep 0.25
  done
  curl -fsS -o /dev/null --cacert "$dir/ca.pem" --resolve acme-test:14000:127.0.0.1 https://acme-test:14000/dir \
    || { log "pebble did not start; see /var/log/connect-acme.log"; exit 1; }
  log "ready: https://acme-test:14000/dir (CA $dir/ca.pem)"
}

case "${1:-}" in
  start) [ $# -eq 2 ] || { echo "usage: $0 start <server-address> | stop" >&2; exit 2; }; start "$2" ;;
  stop) stop ;;
  *) echo "usage: $0 start <server-address> | stop" >&2; exit 2 ;;
esac
