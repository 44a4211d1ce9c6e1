import logging

from celery import shared_task
from django.utils import timezone

from kibo import telegram
from kibo.backups import BackupsUnreadable, backups_record
from kibo.maintenance import audit_archive, audit_log_maintain, table_sizes_record
from kibo.notices import Notice, notice_deliver, retry_in

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


@shared_task(bind=True, acks_late=True, ignore_result=True)
def deliver_notice(
    self, user_ids: list[str], notice: dict, left: dict | None = None, attempt: int = 0
) -> None:
    """Send a notice to a batch of users (kibo.notices.notify); what a push service or
    Telegram did not take now is tried again later, with backoff, while it still matters."""
    message = Notice.from_message(dict(notice))
    delivery = notice_deliver(
        notice=message,
        user_ids=user_ids,
        device_ids=left["devices"] if left else None,
        chat_user_ids=left["chats"] if left else None,
    )
    if not (delivery.devices or delivery.chats):
        return
    wait = retry_in(message, delivery, attempt=attempt + 1)
    if wait is not None:
        deliver_notice.apply_async(
            args=[user_ids, notice],
            kwargs={"left": vars(delivery), "attempt": attempt + 1},
            countdown=wait,
        )


@shared_task(acks_late=True, ignore_result=True)
def read_telegram() -> int:
    """Beat, every few seconds when a bot is configured: link and unlink chats."""
    if not telegram.enabled():
        return 0
    try:
        return telegram.updates_read()
    except telegram.TelegramFailed as failure:
        logger.warning("telegram updates could not be read: %s", failure)
        return 0
