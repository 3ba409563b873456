#!/usr/bin/env bash
# Prepare THIS machine (the developer's or CI's) to host disposable servers:
# a Docker engine, debootstrap, and a local image registry the servers' inner
# engines pull from. Idempotent: every step is skipped when already done.
# It never touches this machine's firewall.
set -euo pipefail

log() { printf '[host-setup] %s\n' "$*"; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
# Let's Encrypt's ACME test server for the letsencrypt part (harness/acme-test.sh).
command -v pebble >/dev/null 2>&1 || need_pkgs+=(pebble)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# The outer engine. The uplink here has MTU 1400; containers must not use more.
mtu=$(ip -o link show "$(ip route show default | awk '{print $5; exit}')" 2>/dev/null \
      | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
mtu=${mtu:-1500}
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (mtu ${mtu})"
  mkdir -p /var/log
  nohup dockerd --mtu "${mtu}" >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log; exit 1; }
fi

# A registry on the host's docker0 address: the servers' inner engines pull
# the stack's images from it, as production pulls from Docker Hub.
if ! curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null; then
  log "starting the local image registry on :5000"
  mkdir -p /var/lib/connect-harness/registry
  cat >/var/lib/connect-harness/registry.yml <<'YML'
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/connect-harness/registry
  delete:
    enabled: true
http:
  addr: 0.0.0.0:5000
log:
  level: warn
YML
  nohup docker-registry serve /var/lib/connect-harness/registry.yml >/var/log/connect-registry.log 2>&1 &
  for _ in $(seq 1 30); do curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break; sleep 1; done
  curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ || { log "registry did not start; see /var/log/connect-registry.log"; exit 1; }
fi
log "ready: $(docker version --format 'engine {{.Server.Version}}'), registry on :5000"
