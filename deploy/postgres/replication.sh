#!/bin/sh
# The replica's way in, on the primary: a role that may stream WAL, with its own password
# (POSTGRES_REPLICATION_PASSWORD), from any address on the compose network. The image runs it
# once, when the data directory is new; for an older one run it by hand (README: Deploy):
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/replication.sh
set -e
if [ -z "${POSTGRES_REPLICATION_PASSWORD:-}" ]; then
    echo "replication.sh: POSTGRES_REPLICATION_PASSWORD is not set: no replication role"
else
    psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        --set password="$POSTGRES_REPLICATION_PASSWORD" <<'SQL'
SELECT format('%s ROLE replicator WITH REPLICATION LOGIN PASSWORD %L',
              CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator')
                   THEN 'ALTER' ELSE 'CREATE' END,
              :'password') \gexec
SQL
    grep -q '^host replication replicator ' "$PGDATA/pg_hba.conf" \
        || echo 'host replication replicator all scram-sha-256' >> "$PGDATA/pg_hba.conf"
    psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        --quiet --command 'SELECT pg_reload_conf()' >/dev/null
    echo "replication.sh: role replicator may stream"
fi
