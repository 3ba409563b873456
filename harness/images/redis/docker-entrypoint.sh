#!/bin/sh
# Entrypoint of the harness's redis:7 stand-in, behaving as the official
# image's entrypoint:
#   - first argument starting with "-" or ending in ".conf": run redis-server
#     with those arguments;
#   - redis-server started as root: chown what under the working directory
#     (/data) is not owned by redis, then re-exec as redis (setpriv, not gosu);
#   - umask 0077 when it is still the default 0022;
#   - exec "$@".
# One shim, for parity of defaults: the official binary is built with
# protected-mode defaulting to "no", Debian's to "yes". When neither the
# arguments nor a config file given as an argument set protected-mode,
# "--protected-mode no" is appended, so an unconfigured server accepts
# connections from other containers in both images.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = redis-server ]; then
  protected=
  for a in "$@"; do
    case "$a" in
      --protected-mode) protected=1 ;;
      *.conf) if [ -r "$a" ] && grep -Eqi '^[[:space:]]*protected-mode[[:space:]]' "$a"; then protected=1; fi ;;
    esac
  done
  [ -n "$protected" ] || set -- "$@" --protected-mode no
fi

if [ "$(umask)" = 0022 ]; then
  umask 0077
fi

exec "$@"
