#!/usr/bin/env bash
# Disposable "servers": systemd containers that run their own Docker engine.
#
#   harness/server.sh create NAME [--keep-offsite] [-p HOSTADDR:HOSTPORT:PORT]...
#                          [--network NET --ip ADDR]
#                          (--keep-offsite: a new server that finds its lost
#                          predecessor's off-site bucket as it was: dr.yml;
#                          --network/--ip: a fixed address on a bridge NET,
#                          made with ADDR's /24 if missing: a cluster's servers
#                          keep their addresses across a restart)
#   harness/server.sh destroy NAME      (container and its /var/lib/docker volume)
#   harness/server.sh address NAME      (the server's address on the outer bridge)
#   harness/server.sh list
#   harness/server.sh network-destroy NET   (a --network bridge, once no server uses it)
#
# The base image is $CONNECT_SERVER_IMAGE (default connect-harness/server:trixie,
# built by harness/build-base.sh server). Any image that boots systemd as
# /sbin/init and has python3 works, e.g. one built from ubuntu:22.04 with
# harness/ubuntu-server.Dockerfile where an image registry is reachable.
set -euo pipefail
image=${CONNECT_SERVER_IMAGE:-connect-harness/server:trixie}
label=connect.harness.server
here="$(cd "$(dirname "$0")" && pwd)"
log() { printf '[server] %s\n' "$*"; }
usage() { sed -n 3,14p "$0" >&2; exit 2; }

# All capabilities but CAP_SYS_RESOURCE (absent from this kernel's bounding
# set, which is why --privileged fails here), CAP_SYS_TIME (timedatectl in
# a server must never set the machine's clock: setting a time zone with the
# RTC in local time does exactly that) and CAP_SYS_MODULE (no kernel modules
# loaded from inside a test server).
run_flags=(
  --cap-add ALL --cap-drop SYS_RESOURCE --cap-drop SYS_TIME --cap-drop SYS_MODULE
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --security-opt systempaths=unconfined
  --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp
  --stop-signal SIGRTMIN+3
)

create() {
  local name=$1; shift
  local publish=() keep_offsite="" network="" ip=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -p) publish+=(-p "$2"); shift 2 ;;
      --network) network=$2; shift 2 ;;
      --ip) ip=$2; shift 2 ;;
      --keep-offsite) keep_offsite=1; shift ;;
      *) usage ;;
    esac
  done
  # The server's "off-site" bucket on the S3 stand-in (when it runs), named
  # after it: emptied for a new server (a new cluster must not meet an old
  # one's pgBackRest repository), created if missing for an existing one.
  local s3=""
  if curl -fsS -o /dev/null http://127.0.0.1:9000/ 2>/dev/null && [ -x "$here/../.venv/bin/python" ]; then
    s3="$here/../.venv/bin/python $here/s3.py"
  fi
  if docker container inspect "$name" >/dev/null 2>&1; then
    [ -z "$s3" ] || $s3 ensure-bucket "$name"
    if [ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]; then
      log "starting existing $name"; docker start "$name" >/dev/null
    else
      log "$name already running"
    fi
  else
    docker image inspect "$image" >/dev/null 2>&1 || {
      log "image $image missing: run harness/build-base.sh server"; exit 1; }
    # A new server gets a new disk: a Docker volume left by a server removed
    # without server.sh destroy would bring back its old containers.
    if docker volume inspect "$name-docker" >/dev/null 2>&1; then
      log "removing the leftover volume $name-docker (no server $name owns it)"
      docker volume rm "$name-docker" >/dev/null
    fi
    log "creating $name from $image"
    local net_flags=()
    if [ -n "$network" ]; then
      [ -n "$ip" ] || { log "--network needs --ip"; exit 2; }
      docker network inspect "$network" >/dev/null 2>&1 ||
        docker network create --subnet "${ip%.*}.0/24" "$network" >/dev/null
      net_flags=(--network "$network" --ip "$ip")
    fi
    if [ -n "$s3" ]; then
      if [ -n "$keep_offsite" ]; then $s3 ensure-bucket "$name"; else $s3 reset-bucket "$name"; fi
    fi
    # offsite-s3: the S3 stand-in on this machine, as DNS would name it.
    docker run -d --add-host offsite-s3:host-gateway --name "$name" --hostname "$name" --label "$label=1" \
      "${run_flags[@]}" "${publish[@]}" "${net_flags[@]}" \
      -v "$name-docker:/var/lib/docker" \
      "$image" >/dev/null
  fi
  # Wait for systemd: "degraded" is normal here (systemd-modules-load fails).
  local state=""
  for _ in $(seq 1 60); do
    state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 1
  done
  case "$state" in
    running|degraded) log "$name is up (systemd: $state) at $(address "$name")" ;;
    *) log "$name did not boot (systemd: ${state:-no answer})"; docker logs --tail 30 "$name" >&2; exit 1 ;;
  esac
}

destroy() {
  local name=$1
  # The server's "off-site" bucket on the S3 stand-in (when it runs), named
  # after it: emptied for a new server (a new cluster must not meet an old
  # one's pgBackRest repository), created if missing for an existing one.
  local s3=""
  if curl -fsS -o /dev/null http://127.0.0.1:9000/ 2>/dev/null && [ -x "$here/../.venv/bin/python" ]; then
    s3="$here/../.venv/bin/python $here/s3.py"
  fi
  if docker container inspect "$name" >/dev/null 2>&1; then
    [ -z "$s3" ] || $s3 ensure-bucket "$name"
    log "removing $name"; docker rm -f "$name" >/dev/null
  fi
  if docker volume inspect "$name-docker" >/dev/null 2>&1; then
    docker volume rm "$name-docker" >/dev/null
  fi
}

address() {
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"
}

case "${1:-}" in
  create) shift; [ $# -ge 1 ] || usage; create "$@" ;;
  network-destroy) [ $# -eq 2 ] || usage; docker network rm "$2" >/dev/null 2>&1 || true ;;
  destroy) [ $# -eq 2 ] || usage; destroy "$2" ;;
  address) [ $# -eq 2 ] || usage; address "$2" ;;
  list) docker ps -a --filter "label=$label" --format '{{.Names}}\t{{.Status}}' ;;
  *) usage ;;
esac
