#!/usr/bin/env bash
# Entrypoint of CI's stand-in for postgres:15 (see ../build). It implements what this project's
# tests and docker-compose.yml use of the official image's interface:
# - `postgres [flags]` (or flags alone) runs the server as the postgres user; anything else runs
#   as given (the compose replica runs `bash -c '... pg_basebackup ...; exec postgres'`);
# - on an empty $PGDATA: initdb as POSTGRES_USER (default postgres) with POSTGRES_PASSWORD,
#   `host all all all $POSTGRES_HOST_AUTH_METHOD` in pg_hba.conf (scram-sha-256 by default; an
#   empty password needs `trust`), the database POSTGRES_DB (default: the user's name), then
#   /docker-entrypoint-initdb.d/*.sh (run if executable, else sourced) and *.sql (psql), against
#   a server listening on the socket only;
# - as in the official image, that first server logs to standard output and the real one to
#   standard error: each prints "database system is ready to accept connections" once.
set -Eeo pipefail

if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres: '{}' +
    exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    : "${POSTGRES_PASSWORD:=}"
    : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        echo "error: the database is uninitialized: set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
        exit 1
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of flags
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
    printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

    temp=("${@:2}" -c "listen_addresses=" -p 5432)
    PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -o "$(printf '%q ' "${temp[@]}")" -w start
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ -z "$("${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" -At <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")" ]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case $f in
            *.sh)
                if [ -x "$f" ]; then
                    echo "$0: running $f"
                    "$f"
                else
                    echo "$0: sourcing $f"
                    # shellcheck disable=SC1090
                    . "$f"
                fi
                ;;
            *.sql)
                echo "$0: running $f"
                "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f"
                ;;
            *) [ -e "$f" ] && echo "$0: ignoring $f" ;;
        esac
    done
    PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop
    echo
    echo "PostgreSQL init process complete; ready for start up."
    echo
fi

exec "$@"
