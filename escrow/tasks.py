import logging

from celery import shared_task
from django.conf import settings

from escrow import chain
from escrow.deposits import DepositRejected, deposit_verify, deposits_watch
from escrow.networks import configured_networks
from escrow.services import escrow_snapshot_take
from escrow.transfers import transfer_process, transfers_process_unfinished
from orders.models import Order, OrderStatus

logger = logging.getLogger(__name__)


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


@shared_task(acks_late=True, ignore_result=True)
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


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=120,
    autoretry_for=(chain.ChainUnavailable,),
    retry_backoff=2,
    retry_backoff_max=30,
)
def check_deposit(self, order_id: str, tx_hash: str) -> None:
    """Keep checking a reported deposit until it is confirmed, so the user need not resubmit."""
    order = Order.objects.select_related("user").filter(pk=order_id).first()
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        return
    try:
        result = deposit_verify(order=order, tx_hash=tx_hash)
    except DepositRejected:
        return
    if result.state == "pending":
        raise self.retry(countdown=settings.KIBO_CHAIN_SWEEP_SECONDS)


@shared_task(acks_late=True, ignore_result=True)
def snapshot_escrow() -> int:
    """Beat: the escrow's balances against the records, for the staff console."""
    return escrow_snapshot_take()
