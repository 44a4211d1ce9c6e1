import logging

from celery import shared_task, signals
from django.conf import settings

from escrow import chain
from escrow.deposits import deposits_watch
from escrow.networks import configured_networks
from escrow.services import escrow_signer_problem, escrow_snapshot_take
from escrow.transfers import PROCESS_TRANSFERS, transfer_process, transfers_process_unfinished

logger = logging.getLogger(__name__)


@signals.worker_init.connect
def refuse_to_start_without_the_escrow_signer(sender=None, **_):
    """A worker on the chain's queues moves escrow funds, so it needs the signer of the escrow
    wallet (the only process that does; the workers on the other queues never sign). The
    worker imports the task modules before it sends worker_init."""
    consumed = set(sender.app.amqp.queues.consume_from) if sender is not None else set()
    if not consumed & {settings.KIBO_CHAIN_QUEUE, settings.KIBO_RETURNS_QUEUE}:
        return
    problem = escrow_signer_problem()
    if problem:
        raise SystemExit(f"The worker refuses to start: {problem}")


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(chain.ChainUnavailable,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def process_transfer(transfer_id: str) -> None:
    """Sign, send and settle one transfer. Beat's sweep picks up whatever this leaves."""
    transfer_process(transfer_id=transfer_id)


@shared_task(name=PROCESS_TRANSFERS, acks_late=True, ignore_result=True)
def process_transfers(transfer_ids: list[str]) -> None:
    """The transfers one transaction created, told in one message, driven one by one (the
    wallet signs one at a time anyway). An unreachable network leaves the rest to beat's
    sweep, seconds later."""
    for transfer_id in transfer_ids:
        try:
            transfer_process(transfer_id=transfer_id)
        except chain.ChainUnavailable:
            logger.warning("network unreachable; the transfer sweep will send the rest")
            return


@shared_task(acks_late=True, ignore_result=True)
def process_unfinished_transfers() -> int:
    return transfers_process_unfinished()


@shared_task(acks_late=True, ignore_result=True)
def watch_deposits() -> None:
    """Beat: scan every configured network for deposits; an unreachable one waits its turn."""
    for spec in configured_networks():
        try:
            deposits_watch(network=spec.name)
        except chain.ChainUnavailable:
            continue
        except Exception:  # one network's trouble must not stop the others
            logger.exception(
                "the deposit watcher failed on %s; it tries again next time", spec.name
            )


@shared_task(acks_late=True, ignore_result=True)
def snapshot_escrow() -> int:
    """Beat: the escrow's balances against the records, for the staff console."""
    return escrow_snapshot_take()
