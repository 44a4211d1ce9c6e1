"""The audit log becomes range-partitioned by month on created_at, so years of it stay as
fast to write and read as one month, and a month past AUDIT_RETENTION_MONTHS leaves by
detaching one partition (audit.retention), never by deleting rows.

The primary key includes the partition key, (id, created_at), as PostgreSQL requires; id
is still a fresh UUID per row. Every index and the append-only trigger are declared on the
parent, so each partition, present or future, has them. `logs_partition_create` makes a
month's partition (its boundaries in UTC); beat keeps months ahead made. A default
partition takes any row no month's partition would, so writing an audit entry never fails
(the operator's metrics report rows there: README, Operations).

The rows are copied into the new table inside this migration's transaction.
"""

from django.db import migrations

PARTITION_CREATE = """
CREATE FUNCTION logs_partition_create(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first_day timestamptz := make_timestamptz(
        extract(year FROM month)::int, extract(month FROM month)::int, 1, 0, 0, 0, 'UTC'
    );
    name text := 'logs_y' || to_char(month, 'YYYY"m"MM');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF logs FOR VALUES FROM (%L) TO (%L) '
            'WITH (autovacuum_vacuum_insert_scale_factor = 0.02, '
            'autovacuum_analyze_scale_factor = 0.01)',
            name, first_day, first_day + interval '1 month'
        );
    END IF;
    RETURN name;
END;
$$;
"""

PARTITION = """
ALTER TABLE logs RENAME TO logs_before_partitioning;
ALTER TABLE logs_before_partitioning RENAME CONSTRAINT logs_pkey TO logs_before_partitioning_pkey;
ALTER INDEX idx_logs_order RENAME TO idx_logs_order_before;
ALTER INDEX idx_logs_action RENAME TO idx_logs_action_before;
ALTER INDEX idx_logs_created RENAME TO idx_logs_created_before;
ALTER INDEX idx_logs_actor RENAME TO idx_logs_actor_before;
ALTER INDEX idx_logs_tx_hash RENAME TO idx_logs_tx_hash_before;

CREATE TABLE logs (
    id uuid NOT NULL,
    action varchar(40) NOT NULL,
    actor_wallet varchar(42),
    metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT statement_timestamp(),
    order_id uuid,
    CONSTRAINT logs_pkey PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER TABLE logs_before_partitioning
    DROP CONSTRAINT logs_order_id_48da791d_fk_orders_id;
ALTER TABLE logs ADD CONSTRAINT logs_order_id_48da791d_fk_orders_id
    FOREIGN KEY (order_id) REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX idx_logs_order ON logs (order_id, created_at);
CREATE INDEX idx_logs_action ON logs (action, created_at DESC);
CREATE INDEX idx_logs_created ON logs (created_at DESC);
CREATE INDEX idx_logs_actor ON logs (actor_wallet, created_at DESC);
CREATE INDEX idx_logs_tx_hash ON logs ((metadata ->> 'tx_hash'));

SELECT logs_partition_create(month::date)
  FROM generate_series(
      date_trunc('month', coalesce(
          (SELECT min(created_at) FROM logs_before_partitioning), now()
      ) AT TIME ZONE 'UTC'),
      date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
      interval '1 month'
  ) AS month;
CREATE TABLE logs_default PARTITION OF logs DEFAULT;

INSERT INTO logs (id, action, actor_wallet, metadata, created_at, order_id)
SELECT id, action, actor_wallet, metadata, created_at, order_id FROM logs_before_partitioning;
DROP TABLE logs_before_partitioning;

CREATE TRIGGER logs_append_only
    BEFORE UPDATE OR DELETE ON logs
    FOR EACH ROW EXECUTE FUNCTION logs_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0011_staff_and_security_actions"),
        ("orders", "0011_autovacuum"),
    ]

    operations = [
        migrations.RunSQL(PARTITION_CREATE, "DROP FUNCTION logs_partition_create(date);"),
        migrations.RunSQL(PARTITION),
    ]
