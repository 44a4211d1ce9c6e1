import logging

from celery import shared_task
from django.utils import timezone

from kibo.backups import BackupsUnreadable, backups_record
from kibo.maintenance import audit_archive, audit_log_maintain, table_sizes_record

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def record_backups() -> int:
    """Beat: what pgBackRest's repository holds, for the backup-age metric and alert."""
    try:
        return backups_record()
    except BackupsUnreadable as error:
        logger.error("the backup repository could not be read: %s", error)
        return 0


@shared_task(acks_late=True, ignore_result=True)
def record_table_sizes() -> int:
    """Beat, weekly: every table's and index's size, for the growth on the dashboard."""
    return table_sizes_record()


@shared_task(acks_late=True, ignore_result=True)
def maintain_audit_log() -> int:
    """Beat, daily: the audit log's coming months made, months past retention archived."""
    upkeep = audit_log_maintain(today=timezone.now().date(), archive=audit_archive())
    return len(upkeep.archived)
