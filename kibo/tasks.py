import logging

from celery import shared_task

from kibo.backups import BackupsUnreadable, backups_record
from kibo.maintenance import table_sizes_record

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
