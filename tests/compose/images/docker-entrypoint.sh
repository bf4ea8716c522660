#!/usr/bin/env bash
# The official postgres image's entrypoint contract (docker-library/postgres 17/*/docker-entrypoint.sh
# at 6edb0a8c), for the stand-in image: not a copy, the part our compose file relies on.
#   - as root: own $PGDATA, then re-run as postgres (gosu)                         (E:333-339)
#   - $PGDATA/PG_VERSION present: the database exists, initialise nothing          (E:246, E:369)
#   - else: POSTGRES_PASSWORD required; initdb with POSTGRES_USER and the password;
#     `host all all all scram-sha-256` in pg_hba.conf; a socket-only temporary server
#     creates POSTGRES_DB unless it exists; /docker-entrypoint-initdb.d/*.sql|*.sh run  (E:342-367)
#   - exec the command (postgres)                                                  (E:377)
set -Eeo pipefail

if [[ "${1:0:1}" == '-' ]]; then set -- postgres "$@"; fi
if [[ "$1" != postgres ]]; then exec "$@"; fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

if [[ "$(id -u)" == 0 ]]; then
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
  exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

if [[ -s "$PGDATA/PG_VERSION" ]]; then
  echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
else
  if [[ -z "${POSTGRES_PASSWORD:-}" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    echo "Error: Database is uninitialized and superuser password is not specified." >&2
    echo "       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser." >&2
    exit 1
  fi
  chmod 00700 "$PGDATA" || :
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments, as upstream's
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") ${POSTGRES_INITDB_ARGS:-}
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
  export PGPASSWORD="${POSTGRES_PASSWORD:-}"
  NOTIFY_SOCKET='' pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  # psql interpolates :'db' only in what it reads, not in -c.
  if [[ -z "$("${psql[@]}" --dbname postgres -tA --set db="$POSTGRES_DB" \
        <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")" ]]; then
    "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e "$f" ]] || continue
    # shellcheck disable=SC1090  # the user's own init scripts
    case "$f" in
      *.sh) echo "running $f"; . "$f" ;;
      *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *) echo "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
