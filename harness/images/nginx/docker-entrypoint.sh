#!/bin/sh
# Entrypoint of the harness's nginx stand-in, with the behaviour of the
# official image's /docker-entrypoint.sh: when the command is nginx or
# nginx-debug, run /docker-entrypoint.d/*.sh (executable) and source *.envsh
# in version order, then exec the command. NGINX_ENTRYPOINT_QUIET_LOGS=1
# silences its messages.
set -e

say() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$0: $*"; }

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
    if [ -n "$(find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null)" ]; then
        say "/docker-entrypoint.d/ is not empty, will attempt to perform configuration"
        for f in $(find /docker-entrypoint.d/ -follow -type f -print | sort -V); do
            # shellcheck disable=SC1090  # *.envsh: scripts dropped in by the user
            case "$f" in
                *.envsh) if [ -x "$f" ]; then say "Sourcing $f"; . "$f"; else say "Ignoring $f, not executable"; fi ;;
                *.sh)    if [ -x "$f" ]; then say "Launching $f"; "$f"; else say "Ignoring $f, not executable"; fi ;;
                *)       say "Ignoring $f" ;;
            esac
        done
        say "Configuration complete; ready for start up"
    else
        say "No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi
# nginx-debug is a separate binary in the official image; here it is the same one.
[ "$1" != nginx-debug ] || { shift; set -- nginx "$@"; }
exec "$@"
