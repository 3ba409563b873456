#!/bin/sh
# Entrypoint of the harness's edoburu/pgbouncer stand-in. Of the production
# entrypoint it keeps what a role that mounts its own files relies on:
#   - creates the auth file (AUTH_FILE, default /etc/pgbouncer/userlist.txt)
#     when it is missing;
#   - leaves an existing /etc/pgbouncer/pgbouncer.ini alone;
#   - execs its arguments.
# Not reproduced: generating pgbouncer.ini / userlist entries from
# DATABASE_URL(S), DB_* and the other environment variables. Asked to run
# pgbouncer without a mounted pgbouncer.ini, it stops with an error instead.
set -e

config=/etc/pgbouncer/pgbouncer.ini
auth_file=${AUTH_FILE:-/etc/pgbouncer/userlist.txt}

if [ ! -e "$auth_file" ]; then
  touch "$auth_file"
fi

case "$1" in
  pgbouncer|*/pgbouncer)
    if [ ! -f "$config" ]; then
      echo "error: $config is missing: mount a pgbouncer.ini (this test image does not generate one from environment variables)" >&2
      exit 1
    fi
    ;;
esac

echo "Starting $*..."
exec "$@"
