"""After a restore or a failover: make the records agree with the chain, then send again.

The chain is the truth about money that left the escrow wallet. The restored records may
lack what happened after the restore point: a payout signed, sent and mined (its transfer
is back to HELD or PENDING), a deposit credited (its order is back to waiting for payment).
`recover` (run by `manage.py escrow_recover`, with the sender paused by escrow.sender):

1. finds the wallet's transactions the records do not have: every nonce from the records'
   next one up to the chain's, and any SIGNED transfer's nonce whose mined hash the records
   lack, read from the blocks after the deposit watcher's checkpoint;
2. matches each to the unfinished transfer of the same token, recipient and amount and
   records it as signed with the chain's own bytes (TRANSFER_RECOVERED), then settles it:
   recovered from the chain, never signed again. A transaction no record explains is
   reported and keeps the sender paused;
3. (first, in fact) runs the deposit watcher from its restored checkpoint, so deposits
   after the restore point are credited, once each (deposits are unique per transaction
   and log), and the returns they owe exist before the chain's transactions are matched;
4. reconciles the books at the final block; only when every token matches (and nothing is
   unmatched) does the sender resume.
"""

import logging
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Max, Q

from audit.models import Action
from audit.services import log_action
from escrow import chain
from escrow.deposits import deposits_watch
from escrow.locks import lock_nonce_cursor, lock_transfer
from escrow.models import ChainCursor, NonceCursor, SignedTransaction, Transfer
from escrow.networks import configured_networks
from escrow.selectors import Reconciliation, escrow_address, reconcile
from escrow.sender import sender_resume
from escrow.transfers import transfer_settle_mined

logger = logging.getLogger(__name__)

# A transfer the chain may have sent after the restore point: in the restored records it
# is any of these (a SIGNED one only at the nonce the chain used).
RECOVERABLE = (
    Transfer.Status.HELD,
    Transfer.Status.FROZEN,
    Transfer.Status.PENDING,
    Transfer.Status.WAITING,
    Transfer.Status.FAILED,
)


@dataclass
class NetworkRecovery:
    network: str
    records_next_nonce: int
    chain_next_nonce: int
    recovered: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    deposits_credited: int = 0


@dataclass
class Recovery:
    networks: list[NetworkRecovery]
    books: list[Reconciliation]
    seconds: dict[str, float]
    resumed: bool


def recover() -> Recovery:
    seconds: dict[str, float] = {}
    names = [spec.name for spec in configured_networks()]
    # The restored checkpoints: the chain after them is what the records may lack.
    checkpoints = dict(ChainCursor.objects.values_list("network", "block_number"))
    started = time.perf_counter()
    credited = {name: deposits_watch(network=name) for name in names}
    seconds["rescan deposits from the checkpoint"] = time.perf_counter() - started

    started = time.perf_counter()
    networks = [_recover_transfers(name, from_block=checkpoints.get(name, 0)) for name in names]
    for network in networks:
        network.deposits_credited = credited[network.network]
    seconds["match the chain's transfers"] = time.perf_counter() - started

    started = time.perf_counter()
    books = reconcile()
    seconds["reconcile"] = time.perf_counter() - started

    clean = all(line.ok for line in books) and not any(n.unmatched for n in networks)
    if clean:
        sender_resume(
            found={
                "recovered": sum(len(n.recovered) for n in networks),
                "deposits_credited": sum(n.deposits_credited for n in networks),
            }
        )
    return Recovery(networks=networks, books=books, seconds=seconds, resumed=clean)


def _recover_transfers(network: str, *, from_block: int) -> NetworkRecovery:
    address = escrow_address()
    ours = SignedTransaction.objects.filter(
        transfer__network=network, transfer__from_address=address
    )
    cursor = NonceCursor.objects.filter(network=network, address=address).first()
    known_max = ours.aggregate(highest=Max("nonce"))["highest"]
    records_next = max(
        cursor.next_nonce if cursor else 0, 0 if known_max is None else known_max + 1
    )
    chain_next = chain.nonce_of(network, address)
    unsettled = set(
        Transfer.objects.filter(
            network=network, from_address=address, status=Transfer.Status.SIGNED
        ).values_list("nonce", flat=True)
    )
    must_find = set(range(records_next, chain_next))
    wanted = must_find | {n for n in unsettled if n is not None and n < chain_next}
    report = NetworkRecovery(network, records_next_nonce=records_next, chain_next_nonce=chain_next)
    if not wanted:
        return report
    sent = chain.sent_from(network, address, nonces=wanted, from_block=from_block)
    for tx in sorted(sent, key=lambda tx: tx.nonce):
        if ours.filter(tx_hash=tx.tx_hash).exists():
            continue  # the records have it: the transfer's own check settles it
        transfer = _attach(network, address, tx)
        if transfer is None:
            report.unmatched.append(
                f"{network} nonce {tx.nonce}: {tx.tx_hash} sends "
                f"{tx.amount_base} {tx.token.symbol if tx.token else '(not a token transfer)'} "
                f"to {tx.recipient}, and no record explains it"
            )
            continue
        settled = transfer_settle_mined(transfer_id=transfer.pk)
        report.recovered.append(
            f"{network} nonce {tx.nonce}: {tx.tx_hash} is {transfer.purpose} transfer "
            f"{transfer.pk} (now {settled.status})"
        )
    for missing in sorted(must_find - {tx.nonce for tx in sent}):
        report.unmatched.append(
            f"{network} nonce {missing}: not found on chain after the checkpoint"
        )
    with transaction.atomic():
        nonce_cursor = lock_nonce_cursor(network, address)
        if nonce_cursor.next_nonce < chain_next:
            nonce_cursor.next_nonce = chain_next
            nonce_cursor.save(update_fields=["next_nonce"])
    return report


@transaction.atomic
def _attach(network: str, address: str, tx: chain.SentTransaction) -> Transfer | None:
    """Record the chain's transaction as the signed attempt of the transfer it made."""
    if tx.token is None or tx.recipient is None:
        return None
    candidate = (
        Transfer.objects.filter(
            network=network,
            from_address=address,
            token=tx.token.symbol,
            recipient__iexact=tx.recipient,
            amount_base=tx.amount_base,
        )
        .filter(Q(status__in=RECOVERABLE) | Q(status=Transfer.Status.SIGNED, nonce=tx.nonce))
        .order_by("created_at")
        .first()
    )
    if candidate is None:
        return None
    transfer = lock_transfer(candidate.pk)
    before = transfer.status
    if before not in RECOVERABLE and (before, transfer.nonce) != (Transfer.Status.SIGNED, tx.nonce):
        return None  # it moved on since it was picked
    transfer.status, transfer.nonce, transfer.held_until = Transfer.Status.SIGNED, tx.nonce, None
    transfer.shortfall_base, transfer.shortfall_coin = None, ""
    transfer.save(
        update_fields=[
            "status",
            "nonce",
            "held_until",
            "shortfall_base",
            "shortfall_coin",
            "updated_at",
        ]
    )
    SignedTransaction.objects.create(
        transfer=transfer,
        nonce=tx.nonce,
        raw_tx=tx.raw_tx,
        tx_hash=tx.tx_hash,
        max_fee_per_gas=tx.max_fee_per_gas,
        max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
    )
    log_action(
        action=Action.TRANSFER_RECOVERED,
        order_id=transfer.order_id,
        metadata={
            "transfer": str(transfer.pk),
            "purpose": transfer.purpose,
            "was": before,
            "nonce": tx.nonce,
            "tx_hash": tx.tx_hash,
        },
    )
    logger.warning(
        "recovered %s transfer %s from the chain: nonce %s, %s (it was %s in the records)",
        transfer.purpose,
        transfer.pk,
        tx.nonce,
        tx.tx_hash,
        before,
    )
    return transfer
