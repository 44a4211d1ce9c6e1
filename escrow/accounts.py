"""An order's escrow account: the crypto its deposit put in escrow, LOCKED until the payout
to its ally (RELEASED) or the refund to its payer (REFUNDED) is confirmed on chain."""

import uuid
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from escrow.models import EscrowAccount
from kibo.db import in_callers_transaction


@transaction.atomic
def escrow_account_open(
    *, order_id: uuid.UUID, amount: Decimal, token: str, network: str, deposit_tx_hash: str
) -> EscrowAccount:
    """Record that `amount` of the order's token sits in escrow for it. A deposit already
    holding another order's account breaks `escrow_accounts_one_per_deposit`."""
    return EscrowAccount.objects.create(
        order_id=order_id,
        amount=amount,
        token=token,
        network=network,
        deposit_tx_hash=deposit_tx_hash,
    )


@in_callers_transaction
def escrow_account_close(*, order_id: uuid.UUID, status: str) -> None:
    """The payout (RELEASED) or refund (REFUNDED) of the order's deposit is confirmed on
    chain, in the settling transaction, which holds the order. Closing a closed account
    changes nothing."""
    stamp = "released_at" if status == EscrowAccount.Status.RELEASED else "refunded_at"
    EscrowAccount.objects.filter(order_id=order_id, status=EscrowAccount.Status.LOCKED).update(
        status=status, **{stamp: timezone.now()}
    )
