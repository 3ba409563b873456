#!/usr/bin/env bash
# Build the images the disposable servers run and push them to the harness
# registry (localhost:5000), from which the servers' inner engines pull as
# production pulls from Docker Hub. Each image is built only when missing
# from the registry, or when its Dockerfile folder or build-args changed
# (content hash label).
#   harness/images.sh            build all (probe postgres pgbouncer redis testapp nginx monitoring)
#   harness/images.sh probe ...  build the named ones
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
registry=${CONNECT_HARNESS_REGISTRY:-localhost:5000}
log() { printf '[images] %s\n' "$*"; }

# build NAME TAG [BUILD-ARG=VALUE ...]: images/NAME with those --build-args.
# The hash covers the folder and the build-args (none: same hash as before).
build() {
  local name=$1 tag=$2 dir="$here/images/$1"; shift 2
  local ref="$registry/connect-harness/$name:$tag" a args=()
  for a in "$@"; do args+=(--build-arg "$a"); done
  local hash; hash=$(cd "$dir" && { find . -type f -print0 | sort -z | xargs -0 sha256sum
                                    [ $# -eq 0 ] || printf 'build-arg %s\n' "$@"; } | sha256sum | cut -c1-12)
  if curl -fsS "http://${registry}/v2/connect-harness/$name/manifests/$tag" \
       -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -o /dev/null 2>/dev/null \
     && [ "$(docker image inspect -f '{{index .Config.Labels "connect.harness.hash"}}' "$ref" 2>/dev/null)" = "$hash" ]; then
    log "$ref up to date"; return
  fi
  log "building $ref"
  docker build -q ${args[@]+"${args[@]}"} --label "connect.harness.hash=$hash" -t "$ref" "$dir" >/dev/null
  docker push -q "$ref" >/dev/null
  log "pushed $ref"
}

"$here/build-base.sh" service
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(probe postgres pgbouncer redis testapp nginx monitoring)
for n in "${names[@]}"; do
  case "$n" in
    probe) build probe 1 ;;
    # Stand-ins for the production images; docs/images.md has the contract.
    # Renamed when its content changes: a server keeps a tag it has pulled.
    postgres) build postgres 15-pgbackrest-2 ;;
    pgbouncer) build pgbouncer 1.18 ;;
    redis) build redis 7 ;;
    # Test app meeting docs/app-contract.md: two good releases, two broken ones.
    testapp)
      build testapp v1 VERSION=v1
      build testapp v2 VERSION=v2
      build testapp v3-broken-health VERSION=v3 BROKEN=health
      build testapp v4-broken-migration VERSION=v4 BROKEN=migration
      ;;
    nginx) build nginx 1.22 ;;
    monitoring) build monitoring 3 ;;
    *) echo "unknown image: $n" >&2; exit 2 ;;
  esac
done
