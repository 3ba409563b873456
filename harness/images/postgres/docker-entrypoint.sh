#!/usr/bin/env bash
# Entrypoint of the harness's postgres:15 stand-in. It reproduces the
# behaviour of the official image's entrypoint that roles rely on:
#   - first argument starting with "-": run "postgres" with those options;
#   - started as root: make PGDATA (and the socket dir) owned by postgres,
#     then re-exec this script as postgres (setpriv instead of gosu);
#   - empty PGDATA: initdb (POSTGRES_INITDB_ARGS, superuser POSTGRES_USER with
#     POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE), append
#     "host all all all $POSTGRES_HOST_AUTH_METHOD" (default: the server's
#     password_encryption, i.e. scram-sha-256) to PGDATA/pg_hba.conf, start a
#     temporary server on the unix socket only (with the same arguments, so a
#     mounted config_file / hba_file is in force), create POSTGRES_DB, run
#     /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz, stop it;
#   - finally exec "$@".
set -Eeo pipefail

# VAR or VAR_FILE (exclusive), exported as VAR.
file_env() {
  local var=$1 def=${2:-} file_var="${1}_FILE" val
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo "error: both $var and $file_var are set (but are exclusive)" >&2
    exit 1
  fi
  val=$def
  if [ -n "${!var:-}" ]; then
    val=${!var}
  elif [ -n "${!file_var:-}" ]; then
    val=$(<"${!file_var}")
  fi
  export "$var=$val"
  unset "$file_var"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  DATABASE_ALREADY_EXISTS=
  if [ -s "$PGDATA/PG_VERSION" ]; then
    DATABASE_ALREADY_EXISTS=true
  fi
}

create_dirs() {
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 3775 /var/run/postgresql || :
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    [ "$(id -u)" != 0 ] || find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
    chmod 0700 "$POSTGRES_INITDB_WALDIR"
  fi
  if [ "$(id -u)" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  fi
}

check_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'EOF'
Error: Database is uninitialized and superuser password is not specified.
       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value,
       or POSTGRES_HOST_AUTH_METHOD=trust (not recommended).
EOF
    exit 1
  fi
  if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    echo 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust allows password-less connections from anywhere.' >&2
  fi
}

init_db() {
  local waldir=()
  # shellcheck disable=SC2034  # used inside the eval below
  [ -z "${POSTGRES_INITDB_WALDIR:-}" ] || waldir=(--waldir "$POSTGRES_INITDB_WALDIR")
  # --pwfile needs a line even for an empty password; initdb's own defaults
  # for pg_hba.conf are kept (trust on the socket and loopback), as upstream.
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "${waldir[@]}"'
}

setup_hba() {
  [ "$1" != postgres ] || shift
  local method
  method=$(postgres -C password_encryption "$@")
  : "${POSTGRES_HOST_AUTH_METHOD:=$method}"
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

psql_run() {
  local cmd=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  [ -z "$POSTGRES_DB" ] || cmd+=(--dbname "$POSTGRES_DB")
  PGHOST='' PGHOSTADDR='' "${cmd[@]}" "$@"
}

temp_start() {
  [ "$1" != postgres ] || shift
  # Unix socket only: nothing can reach the server before init is complete.
  set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
  NOTIFY_SOCKET='' PGUSER="${PGUSER:-$POSTGRES_USER}" \
    pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_stop() {
  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

create_database() {
  local exists
  # POSTGRES_DB is emptied for psql_run only; --set takes the outer value.
  # shellcheck disable=SC2097,SC2098
  exists=$(POSTGRES_DB='' psql_run --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
  if [ -z "${exists//[[:space:]]/}" ]; then
    # shellcheck disable=SC2097,SC2098
    POSTGRES_DB='' psql_run --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
}

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        # shellcheck disable=SC1090
        if [ -x "$f" ]; then echo "$0: running $f"; "$f"; else echo "$0: sourcing $f"; . "$f"; fi ;;
      *.sql) echo "$0: running $f"; psql_run -f "$f" ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_run ;;
      *) echo "$0: ignoring $f" ;;
    esac
  done
}

wants_help() {
  local a
  for a; do
    case "$a" in -'?'|--help|--describe-config|-V|--version) return 0 ;; esac
  done
  return 1
}

main() {
  if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
  fi

  if [ "$1" = postgres ] && ! wants_help "$@"; then
    setup_env
    create_dirs
    if [ "$(id -u)" = 0 ]; then
      HOME=$(getent passwd postgres | cut -d: -f6) \
        exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      check_env
      ls /docker-entrypoint-initdb.d/ >/dev/null
      init_db
      setup_hba "$@"
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      temp_start "$@"
      create_database
      run_init_files
      temp_stop
      unset PGPASSWORD
      echo
      echo 'PostgreSQL init process complete; ready for start up.'
      echo
    else
      echo
      echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
      echo
    fi
  fi

  exec "$@"
}

main "$@"
