"""What the order workflow asks of escrow: pay an ally (a payout, held while the payer may
still dispute it) and refund payers. Each is an outbox row (escrow.transfers) that the
worker sends exactly once."""

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from escrow.amounts import to_base_units
from escrow.chain import ChainUnavailable
from escrow.locks import lock_escrow_account, lock_escrow_accounts
from escrow.models import EscrowSnapshot, Transfer
from escrow.networks import configured_networks, network_spec
from escrow.selectors import escrow_address, reconcile
from escrow.signers import SignerUnavailable, escrow_signer
from escrow.transfers import TransferIntent, transfer_create, transfers_create
from kibo.db import in_callers_transaction
from kibo.errors import Conflict

logger = logging.getLogger(__name__)


def _base_units(network: str, token: str, amount: Decimal) -> int:
    return to_base_units(amount, network_spec(network).token(token).decimals)


@in_callers_transaction
def refunds_create(*, payers: dict[uuid.UUID, str]) -> None:
    """Queue the return of each order's locked deposit to its payer (`payers`: order id ->
    the payer's wallet): one REFUND transfer per order, however often this is called; two
    statements whatever the number of orders. The caller holds the orders' locks."""
    if not payers:
        return
    escrows = {account.order_id: account for account in lock_escrow_accounts(list(payers))}
    if len(escrows) < len(payers):
        raise Conflict("This order has no locked deposit to refund.")
    transfers_create(
        [
            TransferIntent(
                purpose=Transfer.Purpose.REFUND,
                order_id=order_id,
                network=escrow.network,
                token=escrow.token,
                recipient=payer,
                amount_base=_base_units(escrow.network, escrow.token, escrow.amount),
            )
            for order_id, payer in payers.items()
            for escrow in [escrows[order_id]]
        ]
    )


@in_callers_transaction
def escrow_release_create(
    *, order_id: uuid.UUID, recipient: str, payout: Decimal, hold: timedelta
) -> Transfer:
    """Pay the ally of a completed order its payout (the deposit minus Kibo's fee, which the
    caller computed; rounded down to base units). The payout is HELD for `hold` while the
    payer may still say the shop was not paid (zero: it goes out at once); the workflow
    decides how long. The caller holds the order's lock."""
    escrow = lock_escrow_account(order_id)
    if escrow is None:
        raise Conflict("This order has no locked deposit to release.")
    return transfer_create(
        purpose=Transfer.Purpose.RELEASE,
        order_id=order_id,
        network=escrow.network,
        token=escrow.token,
        recipient=recipient,
        amount_base=_base_units(escrow.network, escrow.token, payout),
        held_until=timezone.now() + hold if hold else None,
    )


def escrow_snapshot_take() -> int:
    """Reconcile the escrow on each configured network (escrow.selectors.reconcile) and keep
    each token's line for the staff console; returns how many lines it kept. A network whose
    node does not answer keeps its last lines, which show their age. The chain is read
    outside any transaction; each network's lines are written in one."""
    kept = 0
    for spec in configured_networks():
        try:
            lines = reconcile(networks=[spec])
        except ChainUnavailable:
            logger.warning("the escrow snapshot of %s waits for its node to answer", spec.name)
            continue
        taken_at = timezone.now()
        with transaction.atomic():
            for line in lines:
                EscrowSnapshot.objects.update_or_create(
                    network=line.network,
                    token=line.token,
                    defaults={
                        "decimals": line.decimals,
                        "block": line.block,
                        "on_chain": line.on_chain,
                        "expected": line.expected,
                        "locked": line.locked,
                        "ok": line.ok,
                        "taken_at": taken_at,
                    },
                )
        kept += len(lines)
    return kept


def escrow_signer_problem() -> str | None:
    """Why this process cannot sign for the escrow wallet, or None when it can."""
    try:
        address = escrow_signer().address
    except SignerUnavailable as unavailable:
        return str(unavailable)
    if address != escrow_address():
        return f"the signer signs for {address}, but KIBO_ESCROW_ADDRESS is {escrow_address()}."
    return None
