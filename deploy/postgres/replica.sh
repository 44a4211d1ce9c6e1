#!/bin/sh
# The read replica's entrypoint (docker-compose.yml's postgres-replica). On its first start,
# with an empty data directory, a copy of the primary: pg_basebackup through the slot
# kibo_replica (the primary keeps the WAL this replica still needs), writing standby.signal
# and the primary's address (-R). Then, and on every later start, PostgreSQL as the image runs
# it: a hot standby that streams the primary's WAL and answers reads only.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_REPLICATION_PASSWORD:?set POSTGRES_REPLICATION_PASSWORD}"
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    export PGPASSWORD="$POSTGRES_REPLICATION_PASSWORD"
    gosu postgres pg_receivewal --host=postgres --username=replicator \
        --slot=kibo_replica --create-slot --if-not-exists
    gosu postgres pg_basebackup --host=postgres --username=replicator --pgdata="$PGDATA" \
        --slot=kibo_replica --wal-method=stream --write-recovery-conf --checkpoint=fast
    unset PGPASSWORD
fi
exec docker-entrypoint.sh postgres
