#!/usr/bin/env bash
# Entrypoint of CI's stand-in for mariadb:10.11 (see ../build). It implements what this
# project's tests and docker-compose.yml use of the official image's interface:
# - `mariadbd [flags]` (or flags alone) runs the server as the mysql user; anything else runs as
#   given;
# - on an empty /var/lib/mysql: the system tables, root with MARIADB_ROOT_PASSWORD (empty only
#   with MARIADB_ALLOW_EMPTY_ROOT_PASSWORD) at localhost and at '%', the database
#   MARIADB_DATABASE, the user MARIADB_USER / MARIADB_PASSWORD with every right on it, then
#   /docker-entrypoint-initdb.d/*.sh (run if executable, else sourced) and *.sql, against a
#   server without networking;
# - as in the official image, only the real server logs "ready for connections" with
#   "port: 3306" (the first one says "port: 0"), on standard error.
set -Eeo pipefail

if [ "${1:0:1}" = - ]; then
    set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
    exec "$@"
fi

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$datadir" /run/mysqld
    find "$datadir" /run/mysqld \! -user mysql -exec chown mysql: '{}' +
    exec gosu mysql "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -d "$datadir/mysql" ]; then
    : "${MARIADB_ROOT_PASSWORD:=${MYSQL_ROOT_PASSWORD:-}}"
    : "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:=${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
    : "${MARIADB_DATABASE:=${MYSQL_DATABASE:-}}"
    : "${MARIADB_USER:=${MYSQL_USER:-}}"
    : "${MARIADB_PASSWORD:=${MYSQL_PASSWORD:-}}"
    if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ]; then
        echo "error: the database is uninitialized: set MARIADB_ROOT_PASSWORD, or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1" >&2
        exit 1
    fi
    echo "Initializing database files"
    mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal \
        --skip-test-db --skip-log-bin --default-time-zone=SYSTEM --cross-bootstrap >/dev/null
    echo "Database files initialized"

    "$@" --skip-networking --socket="$socket" --skip-log-bin --default-time-zone=SYSTEM &
    pid=$!
    client=(mariadb --protocol=socket --socket="$socket" -uroot --database=mysql)
    for _ in $(seq 300); do
        if "${client[@]}" -e 'SELECT 1' >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: the initialisation server exited" >&2
            exit 1
        fi
        sleep 0.1
    done
    quote() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }
    pw=$(quote "$MARIADB_ROOT_PASSWORD")
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        echo "DROP USER IF EXISTS root@'127.0.0.1', root@'::1';"
        echo "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname, '\\'');"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY $pw;"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        echo "GRANT PROXY ON ''@'%' TO 'root'@'%' WITH GRANT OPTION;"
        echo "SET PASSWORD FOR 'root'@'localhost' = PASSWORD($pw);"
        if [ -n "$MARIADB_DATABASE" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
        fi
        if [ -n "$MARIADB_USER" ]; then
            echo "CREATE USER $(quote "$MARIADB_USER")@'%' IDENTIFIED BY $(quote "$MARIADB_PASSWORD");"
            if [ -n "$MARIADB_DATABASE" ]; then
                echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO $(quote "$MARIADB_USER")@'%';"
            fi
        fi
    } | "${client[@]}"
    client=(mariadb --protocol=socket --socket="$socket" -uroot --password="$MARIADB_ROOT_PASSWORD")
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
                "${client[@]}" ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"} <"$f"
                ;;
            *) [ -e "$f" ] && echo "$0: ignoring $f" ;;
        esac
    done
    kill "$pid"
    wait "$pid" || true
    echo
    echo "MariaDB init process done. Ready for start up."
    echo
fi

exec "$@"
