#!/bin/sh
# Run once by the postgres image's entrypoint when it initialises the primary (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml): lets the replica stream from it over the
# compose network (`host all all all` in pg_hba.conf does not cover replication).
echo "host replication all all trust" >>"$PGDATA/pg_hba.conf"
