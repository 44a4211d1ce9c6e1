"""The views the operator reads in psql (README: Operations, Maintenance): which tables
carry dead rows and when autovacuum last saw them, what has been running for more than a
second, and, where pg_stat_statements is installed, the slowest statements on average."""

from django.db import migrations

TABLE_HEALTH = """
CREATE VIEW ops_table_health AS
SELECT s.relname AS table_name,
       s.n_live_tup AS live_rows,
       s.n_dead_tup AS dead_rows,
       round(100.0 * s.n_dead_tup / greatest(s.n_live_tup + s.n_dead_tup, 1), 1)
           AS dead_percent,
       pg_size_pretty(pg_total_relation_size(s.relid)) AS total_size,
       s.n_mod_since_analyze AS changed_since_analyze,
       s.last_autovacuum,
       s.last_autoanalyze,
       s.autovacuum_count,
       s.seq_scan,
       s.idx_scan
  FROM pg_stat_user_tables s
 ORDER BY s.n_dead_tup DESC;
"""

LONG_RUNNING = """
CREATE VIEW ops_long_running_queries AS
SELECT pid,
       usename AS database_user,
       application_name,
       state,
       now() - xact_start AS in_transaction_for,
       now() - query_start AS running_for,
       wait_event_type,
       wait_event,
       left(query, 500) AS query
  FROM pg_stat_activity
 WHERE datname = current_database()
   AND state <> 'idle'
   AND pid <> pg_backend_pid()
   AND now() - coalesce(xact_start, query_start) > interval '1 second'
 ORDER BY coalesce(xact_start, query_start);
"""

# pg_stat_statements needs shared_preload_libraries; where it is installed, its slowest
# statements on average. Without it (or the right to install it) there is no such view.
SLOW_STATEMENTS = """
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_stat_statements is not available: %', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') THEN
        EXECUTE $view$
        CREATE VIEW ops_slow_statements AS
        SELECT calls,
               round(mean_exec_time::numeric, 2) AS mean_ms,
               round(total_exec_time::numeric, 1) AS total_ms,
               rows,
               left(query, 500) AS query
          FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY mean_exec_time DESC
         LIMIT 50
        $view$;
    END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("kibo", "0011_table_sizes")]

    operations = [
        migrations.RunSQL(TABLE_HEALTH, "DROP VIEW ops_table_health;"),
        migrations.RunSQL(LONG_RUNNING, "DROP VIEW ops_long_running_queries;"),
        migrations.RunSQL(SLOW_STATEMENTS, "DROP VIEW IF EXISTS ops_slow_statements;"),
    ]
