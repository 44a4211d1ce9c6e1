from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from escrow.models import EscrowAccount, RefundJob
from kibo.errors import Conflict


@transaction.atomic
def escrow_account_lock(*, order, amount: Decimal, deposit_tx_hash: str) -> EscrowAccount:
    """Record that `amount` of the order's token sits in escrow for it."""
    return EscrowAccount.objects.create(
        order=order,
        amount=amount,
        token=order.crypto_token,
        network=order.network,
        deposit_tx_hash=deposit_tx_hash,
    )


@transaction.atomic
def refund_job_create(*, order) -> RefundJob:
    """Queue the return of an order's locked deposit to its owner (one job per order)."""
    escrow = EscrowAccount.objects.select_for_update().filter(order=order).first()
    if escrow is None:
        raise Conflict("This order has no locked deposit to refund.")
    job, _ = RefundJob.objects.get_or_create(
        order=order,
        defaults={
            "to_address": order.user.wallet_address,
            "amount": escrow.amount,
            "token": escrow.token,
            "network": escrow.network,
        },
    )
    return job


@transaction.atomic
def refund_job_complete(*, order, tx_hash: str) -> RefundJob:
    """Mark the refund confirmed on chain: the job COMPLETED, the escrow REFUNDED."""
    now = timezone.now()
    job = RefundJob.objects.select_for_update().get(order=order)
    if job.status != RefundJob.Status.COMPLETED:
        job.status = RefundJob.Status.COMPLETED
        job.tx_hash = tx_hash
        job.processed_at = now
        job.save(update_fields=["status", "tx_hash", "processed_at"])
    EscrowAccount.objects.filter(order=order, status=EscrowAccount.Status.LOCKED).update(
        status=EscrowAccount.Status.REFUNDED, refunded_at=now
    )
    return job
