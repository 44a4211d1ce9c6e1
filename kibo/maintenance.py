"""What the operator watches about the database itself (README: Operations, Maintenance):
table and index sizes over time, recorded weekly by beat for the dashboard. The autovacuum
settings of the hot tables are in their apps' migrations; the views `ops_table_health`,
`ops_long_running_queries` and (with pg_stat_statements) `ops_slow_statements` in kibo's."""

from django.db import connection, transaction
from django.utils import timezone

from kibo.models import TableSize

# Every table of this schema that is not itself a partition, with its partitions added up.
SIZES = """
SELECT parent.relname,
       sum(pg_table_size(member.oid)),
       sum(pg_indexes_size(member.oid)),
       sum(greatest(member.reltuples, 0))::bigint
  FROM pg_class parent
  JOIN pg_namespace ns ON ns.oid = parent.relnamespace
  CROSS JOIN LATERAL (
      SELECT parent.oid AS oid WHERE parent.relkind = 'r'
      UNION ALL
      SELECT relid FROM pg_partition_tree(parent.oid) WHERE parent.relkind = 'p' AND isleaf
  ) leaves
  JOIN pg_class member ON member.oid = leaves.oid
 WHERE ns.nspname = current_schema()
   AND parent.relkind IN ('r', 'p')
   AND NOT parent.relispartition
 GROUP BY parent.relname
"""


@transaction.atomic
def table_sizes_record() -> int:
    """Record today's size of every table (beat, weekly). Returns how many tables."""
    day = timezone.localdate()
    with connection.cursor() as cursor:
        cursor.execute(SIZES)
        rows = cursor.fetchall()
    for table, table_bytes, index_bytes, estimate in rows:
        TableSize.objects.update_or_create(
            day=day,
            table=table,
            defaults={
                "table_bytes": int(table_bytes),
                "index_bytes": int(index_bytes),
                "rows": int(estimate),
            },
        )
    return len(rows)
