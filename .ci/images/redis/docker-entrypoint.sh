#!/usr/bin/env bash
# Entrypoint of CI's stand-in for redis:7 (see ../build). As the official image: flags (or a
# *.conf file) alone run `redis-server` with them; the server runs as the redis user in /data;
# protected mode is off by default (the official image builds Redis that way), so clients from
# outside the container are served without a password. Anything else runs as given.
set -Eeo pipefail

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" != redis-server ]; then
    exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec gosu redis "${BASH_SOURCE[0]}" "$@"
fi

# A configuration file stays the first argument; later flags override the default.
shift
conf=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    conf=("$1")
    shift
fi
exec redis-server "${conf[@]}" --protected-mode no "$@"
