"""The database's upkeep (README: Operations, Maintenance): table and index sizes over time,
recorded weekly by beat for the dashboard; the audit log's monthly partitions made ahead
and, past AUDIT_RETENTION_MONTHS, archived to S3 and dropped (audit.retention), daily. The
autovacuum settings of the hot tables are in their apps' migrations; the views
`ops_table_health`, `ops_long_running_queries` and (with pg_stat_statements)
`ops_slow_statements` in kibo's."""

import logging
from dataclasses import dataclass, field
from datetime import date

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.partitions import logs_partitions_ensure
from audit.retention import Archive, ArchiveFailed, logs_partition_archive, logs_partitions_due
from kibo import config
from kibo.models import TableSize

logger = logging.getLogger(__name__)

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


@dataclass
class AuditUpkeep:
    made: list[str]
    archived: list[str] = field(default_factory=list)
    failed: str = ""


def audit_archive() -> Archive | None:
    """The configured archive bucket, or None (then nothing is archived or dropped)."""
    if not settings.KIBO_AUDIT_ARCHIVE_BUCKET:
        return None
    client = boto3.client(
        "s3",
        region_name=settings.KIBO_AUDIT_ARCHIVE_REGION,
        endpoint_url=settings.KIBO_AUDIT_ARCHIVE_ENDPOINT_URL,
    )
    return Archive(client, settings.KIBO_AUDIT_ARCHIVE_BUCKET, settings.KIBO_AUDIT_ARCHIVE_PREFIX)


def audit_log_maintain(*, today: date, archive: Archive | None) -> AuditUpkeep:
    """Beat, daily: this month's and the coming months' partitions; then each month past
    AUDIT_RETENTION_MONTHS archived, verified and dropped, oldest first, stopping at the
    first that fails (it stays, detached, for the next run)."""
    upkeep = AuditUpkeep(made=logs_partitions_ensure(today=today))
    due = logs_partitions_due(today=today, retention_months=config.AUDIT_RETENTION_MONTHS.get())
    if due and archive is None:
        logger.warning(
            "%d audit month(s) past AUDIT_RETENTION_MONTHS stay: no KIBO_AUDIT_ARCHIVE_BUCKET",
            len(due),
        )
        return upkeep
    for name in due:
        try:
            logs_partition_archive(name, archive=archive)
        except (ArchiveFailed, BotoCoreError, ClientError) as error:
            upkeep.failed = f"{name}: {error}"
            logger.error("archiving the audit log's %s failed: %s", name, error)
            break
        upkeep.archived.append(name)
    return upkeep
