from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from escrow import chain
from orders.alerts import receipts_due_warn
from orders.calls import order_call_allies
from orders.models import Order, OrderStatus
from orders.payments import DepositRejected, deposit_verify
from orders.services import daily_stats_rollup, orders_expire_due


@shared_task(acks_late=True, ignore_result=True)
def expire_due_orders() -> int:
    """Beat runs this every few seconds; overlapping runs skip each other's rows."""
    return orders_expire_due()


@shared_task(acks_late=True, ignore_result=True)
def call_allies(order_id: str) -> None:
    """An order reached the board: tell the online allies who may take it."""
    order_call_allies(order_id=order_id)


@shared_task(acks_late=True, ignore_result=True)
def warn_receipts_due() -> int:
    """Beat, every few seconds: a minute left to upload a receipt."""
    return receipts_due_warn()


@shared_task(acks_late=True, ignore_result=True)
def roll_up_daily_stats() -> int:
    """Beat, every few minutes: the staff console's thirty days."""
    return daily_stats_rollup()


@shared_task(
    # The name it had in escrow.tasks: checks queued before it moved still find it.
    name="escrow.tasks.check_deposit",
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
    if order is not None and order.status == OrderStatus.PENDING_PAYMENT:
        try:
            result = deposit_verify(order=order, tx_hash=tx_hash)
        except DepositRejected:
            pass
        else:
            if result.state == "pending":
                raise self.retry(countdown=settings.KIBO_CHAIN_SWEEP_SECONDS)
    cache.delete(_in_flight(order_id, tx_hash))  # done: a new report may check again


# How long a queued check counts as in flight: its retries add up to less than this.
DEPOSIT_CHECK_SECONDS = 60 * 60


def _in_flight(order_id, tx_hash: str) -> str:
    return f"deposit-check:{order_id}:{tx_hash.lower()}"


def check_deposit_once(order_id, tx_hash: str) -> bool:
    """Queue check_deposit for a reported payment, unless a check of this order and hash
    is already in flight (a payer clicking again, or a flood of reports, adds none)."""
    if not cache.add(_in_flight(order_id, tx_hash), 1, timeout=DEPOSIT_CHECK_SECONDS):
        return False
    check_deposit.delay(str(order_id), tx_hash)
    return True
