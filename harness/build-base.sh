#!/usr/bin/env bash
# Build (once) a Debian base image with debootstrap + docker import.
#   harness/build-base.sh server   -> connect-harness/server:trixie  (systemd "server")
#   harness/build-base.sh service  -> connect-harness/base:bookworm  (base for service images)
# The rootfs tarball is cached in $CONNECT_HARNESS_CACHE (default
# /var/cache/connect-harness); the image is rebuilt from it when missing.
set -euo pipefail
kind=${1:?usage: build-base.sh server|service}
cache=${CONNECT_HARNESS_CACHE:-/var/cache/connect-harness}
mirror=${CONNECT_HARNESS_MIRROR:-http://deb.debian.org/debian}
case "$kind" in
  server)
    suite=trixie; image=connect-harness/server:trixie
    # What a fresh cloud server has: systemd, sshd, python3, sudo.
    include=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,ca-certificates,sudo,openssh-server,procps,curl,gnupg,kmod
    cmd='CMD ["/sbin/init"]'
    ;;
  service)
    suite=bookworm; image=connect-harness/base:bookworm
    include=ca-certificates
    cmd='CMD ["/bin/bash"]'
    ;;
  *) echo "unknown kind: $kind (server|service)" >&2; exit 2 ;;
esac
log() { printf '[build-base] %s\n' "$*"; }
if docker image inspect "$image" >/dev/null 2>&1; then
  log "$image present"; exit 0
fi
mkdir -p "$cache"
tarball="$cache/${kind}-${suite}.tar"
if [ ! -s "$tarball" ]; then
  dir=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$dir"' EXIT
  log "debootstrap $suite into $dir (about 75 s)"
  debootstrap --variant=minbase --include="$include" "$suite" "$dir" "$mirror" >"$cache/debootstrap-$kind.log" 2>&1 \
    || { tail -20 "$cache/debootstrap-$kind.log"; exit 1; }
  # Smaller image, no stale apt lists or machine identity.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  : >"$dir/etc/machine-id"
  tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi
log "docker import $image"
docker import -c "$cmd" "$tarball" "$image" >/dev/null
log "$image built"
