"""Whether Kibo may sign and send from the escrow wallet now.

A database brought back from a backup, or a standby promoted after the primary died, runs
on a new PostgreSQL timeline, and its records may stop short of what the chain already
has: a payout signed and mined after the restore point is, in the restored records, a
transfer still waiting to be signed. Signing it again would pay twice. So the sender
compares the timeline it last sent on with the database's now, and on a change pauses
itself (SENDER_PAUSED) until `manage.py escrow_recover` has matched the chain's transfers
to the records and the books reconcile (escrow.recovery resumes it).
"""

import logging

from django.db import connection, transaction

from audit.models import Action
from audit.services import log_action
from escrow.locks import lock_sender_state
from escrow.models import SenderState

logger = logging.getLogger(__name__)


def database_timeline() -> int:
    """The PostgreSQL timeline this database writes on (the first part of its WAL file's
    name): 1 from initdb, one more at each restore or standby promotion."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")
        (walfile,) = cursor.fetchone()
    return int(walfile[:8], 16)


def sender_paused() -> str | None:
    """Why sending is paused, or None when the escrow wallet may sign and send. The first
    call on a new timeline pauses the sender."""
    timeline = database_timeline()
    state = SenderState.objects.filter(pk=1).first()
    if state is None:  # the first transfer this database ever sends
        SenderState.objects.get_or_create(pk=1, defaults={"timeline": timeline})
        return None
    reason = _why_paused(state, timeline)
    if reason and not state.paused_because:
        return _pause(reason)
    return reason


def sender_would_pause() -> str | None:
    """Why the sender is (or at its next transfer will be) paused; reads only."""
    state = SenderState.objects.filter(pk=1).first()
    return _why_paused(state, database_timeline()) if state else None


def _why_paused(state: SenderState, timeline: int) -> str | None:
    if state.paused_because:
        return state.paused_because
    if state.timeline != timeline:
        return (
            f"the database moved from timeline {state.timeline} to {timeline} (a restore "
            "or a failover): run `manage.py escrow_recover`"
        )
    return None


@transaction.atomic
def _pause(reason: str) -> str:
    state = lock_sender_state(timeline=database_timeline())
    if not state.paused_because:
        state.paused_because = reason
        state.save(update_fields=["paused_because", "changed_at"])
        log_action(action=Action.SENDER_PAUSED, metadata={"reason": reason})
        logger.error("the escrow sender paused itself: %s", reason)
    return state.paused_because


@transaction.atomic
def sender_resume(*, found: dict) -> None:
    """Send again, on this timeline: recovery matched the chain and the books reconcile."""
    timeline = database_timeline()
    state = lock_sender_state(timeline=timeline)
    was = state.paused_because
    state.timeline, state.paused_because = timeline, ""
    state.save(update_fields=["timeline", "paused_because", "changed_at"])
    log_action(action=Action.SENDER_RESUMED, metadata={"was_paused_because": was, **found})
    logger.warning("the escrow sender resumed after recovery: %s", found)
