#!/usr/bin/env bash
# The "off-site" S3-compatible store the disposable servers back up to:
# moto_server (plain HTTP on 127.0.0.1:9000) behind stunnel4 (TLS on :9443,
# a certificate for offsite-s3 signed by a test CA in
# /var/lib/connect-harness/s3/ca.pem), as pgBackRest 2.45 needs (TLS, a DNS
# name, path-style URIs; see HARNESS.md). The name has no dot: moto reads
# a dotted Host (s3.example.test) as a virtual-host bucket ("s3"), whatever
# the URI style. In memory: gone when moto stops.
# Idempotent. Usage: harness/s3-stand-in.sh [VENV]
set -euo pipefail
venv=${1:-.venv}
dir=/var/lib/connect-harness/s3
log() { printf '[s3] %s\n' "$*"; }

if ! command -v stunnel4 >/dev/null 2>&1; then
  log "installing stunnel4"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stunnel4 >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stunnel4 >/dev/null; }
fi

install -d -m 0700 "$dir"
if [ ! -s "$dir/ca.pem" ]; then
  log "making the test CA"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=connect harness test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  rm -f "$dir/server.pem"
fi
if [ ! -s "$dir/server.pem" ] || ! openssl x509 -in "$dir/server.pem" -noout -ext subjectAltName 2>/dev/null | grep -q "DNS:offsite-s3"; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=offsite-s3" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
    -extfile <(printf 'subjectAltName=DNS:offsite-s3,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
    -out "$dir/server.pem" 2>/dev/null
fi
chmod 0644 "$dir/ca.pem"

if ! curl -fsS -o /dev/null http://127.0.0.1:9000/ 2>/dev/null; then
  log "starting moto_server on 127.0.0.1:9000"
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p 9000 >/var/log/connect-s3.log 2>&1 &
  for _ in $(seq 1 30); do curl -fsS -o /dev/null http://127.0.0.1:9000/ 2>/dev/null && break; sleep 0.5; done
  curl -fsS -o /dev/null http://127.0.0.1:9000/ || { log "moto_server did not start; see /var/log/connect-s3.log"; exit 1; }
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/9443) 2>/dev/null; then
  log "starting stunnel4 on :9443 (TLS for offsite-s3)"
  cat >"$dir/stunnel.conf" <<CONF
foreground = no
pid = $dir/stunnel.pid
output = /var/log/connect-s3-tls.log
[s3]
accept = 0.0.0.0:9443
connect = 127.0.0.1:9000
cert = $dir/server.pem
key = $dir/server.key
CONF
  stunnel4 "$dir/stunnel.conf"
  for _ in $(seq 1 20); do (exec 3<>/dev/tcp/127.0.0.1/9443) 2>/dev/null && break; sleep 0.5; done
fi
# Any HTTP answer through the TLS front with the test CA will do.
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$dir/ca.pem" --resolve offsite-s3:9443:127.0.0.1 \
         https://offsite-s3:9443/ 2>/dev/null || true)
case "$code" in [2-5][0-9][0-9]) ;; *) log "TLS to the store fails; see /var/log/connect-s3-tls.log"; exit 1 ;; esac
log "ready: https://offsite-s3:9443 (CA $dir/ca.pem)"
