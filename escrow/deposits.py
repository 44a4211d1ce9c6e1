"""Money coming into escrow: what the watcher finds on chain, and what a payer reports
(orders.payments).

Both paths end in `deposit_record`, the one place a confirmed incoming transfer becomes a
Deposit: credited to the order it pays (the orders app says which, through escrow.outcomes),
or returned to its sender when no order can take it (late, short, a second payment, the
excess of an over-payment, an unknown sender, a blocked wallet).
"""

import logging
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import log_action
from escrow import chain
from escrow.amounts import from_base_units, to_base_units
from escrow.locks import lock_deposit
from escrow.models import ChainCursor, Deposit, ScannedBlock, Transfer
from escrow.networks import NetworkSpec, TokenSpec, network_spec
from escrow.outcomes import outcomes
from escrow.selectors import escrow_address
from escrow.transfers import transfer_create
from kibo import config
from kibo.db import violated_constraint
from kibo.errors import Conflict
from kibo.models import User

logger = logging.getLogger(__name__)

SCANNED_BLOCKS_KEPT = 128


def token_of(spec: NetworkSpec, incoming: chain.IncomingTransfer) -> TokenSpec | None:
    """The allow-listed token an incoming transfer moved, if Kibo accepts it."""
    if incoming.token_address is None:
        return next((t for t in spec.tokens.values() if t.is_native), None)
    return spec.token_at(incoming.token_address)


def deposit_record(
    *, incoming: chain.IncomingTransfer, order_hint: uuid.UUID | None = None
) -> Deposit | None:
    """Turn a confirmed transfer into escrow into a Deposit, exactly once. `order_hint` is
    the order its payer reported it for.

    Returns the Deposit, or None for a token Kibo does not accept (never touched).
    """
    spec = network_spec(incoming.network)
    token = token_of(spec, incoming)
    if token is None or incoming.amount_base <= 0:
        return None
    key = {
        "network": incoming.network,
        "tx_hash": incoming.tx_hash,
        "log_index": incoming.log_index,
    }
    existing = Deposit.objects.filter(**key).first()
    if existing:
        return existing
    try:
        return _deposit_record(incoming=incoming, token=token, order_hint=order_hint, key=key)
    except IntegrityError as error:  # recorded meanwhile by the watcher or a second request
        if violated_constraint(error) != "deposits_once_per_transfer":
            raise
        return Deposit.objects.get(**key)


@transaction.atomic
def _deposit_record(*, incoming, token: TokenSpec, order_hint, key) -> Deposit:
    fields = {
        **key,
        "block_number": incoming.block_number,
        "block_hash": incoming.block_hash,
        "token": token.symbol,
        "token_address": incoming.token_address,
        "sender": incoming.sender,
        "amount_base": incoming.amount_base,
    }
    if incoming.sender in config.ESCROW_TREASURY_ADDRESSES.get():
        return Deposit.objects.create(
            **fields, outcome=Deposit.Outcome.TREASURY, reason="operator funding"
        )
    claim = outcomes().deposit_claim(incoming=incoming, token=token, order_hint=order_hint)
    paid = claim.order_id if claim.credited else None
    credited = claim.credited_base if paid is not None else 0
    rest = incoming.amount_base - credited
    kept = rest if 0 < rest < _return_minimum(token) else 0
    if paid is not None:
        deposit = Deposit.objects.create(
            **fields,
            order_id=paid,
            credited_base=credited,
            kept_base=kept,
            outcome=Deposit.Outcome.CREDITED,
            reason="the excess of an over-payment" if rest else "",
        )
        outcomes().deposit_credited(
            order_id=paid,
            tx_hash=incoming.tx_hash,
            amount_received=from_base_units(incoming.amount_base, token.decimals),
        )
    else:
        deposit = Deposit.objects.create(
            **fields,
            order_id=claim.order_id,
            kept_base=kept,
            outcome=Deposit.Outcome.RETURNED,
            reason=claim.reason,
        )
        log_action(
            action=Action.DEPOSIT_REJECTED,
            order_id=claim.order_id,
            actor_wallet=incoming.sender,
            metadata={
                "tx_hash": incoming.tx_hash,
                "reason": claim.reason,
                "amount_base": str(incoming.amount_base),
                "token": token.symbol,
                **({"kept_base": str(kept)} if kept else {}),
            },
        )
    if rest > 0 and not kept:
        _return(deposit, rest)
    return deposit


def _return_minimum(token: TokenSpec) -> int:
    """RETURN_MIN_<TOKEN> in the token's base units."""
    return to_base_units(config.RETURN_MIN[token.symbol].get(), token.decimals)


def _return(deposit: Deposit, amount_base: int) -> Transfer:
    return transfer_create(
        purpose=Transfer.Purpose.RETURN,
        deposit_id=deposit.pk,
        network=deposit.network,
        token=deposit.token,
        recipient=deposit.sender,
        amount_base=amount_base,
    )


@transaction.atomic
def deposit_return_kept(*, deposit_id, staff: User) -> Transfer:
    """Staff return a deposit kept as dust to its sender (audited); once: a deposit has at
    most one RETURN."""
    deposit = lock_deposit(deposit_id)
    if deposit.kept_base <= 0:
        raise Conflict("This deposit kept nothing to return.")
    existing = Transfer.objects.filter(deposit=deposit, purpose=Transfer.Purpose.RETURN).first()
    if existing is not None:
        return existing
    transfer = _return(deposit, int(deposit.kept_base))
    log_action(
        action=Action.KEPT_DEPOSIT_RETURNED,
        order_id=deposit.order_id,
        actor_wallet=staff.wallet_address,
        metadata={
            "deposit": str(deposit.pk),
            "transfer": str(transfer.pk),
            "amount_base": str(deposit.kept_base),
            "token": deposit.token,
            "staff": str(staff),
        },
    )
    return transfer


def deposits_watch(*, network: str) -> int:
    """Scan the network for transfers into escrow, up to its final block, in bounded steps.

    Resumes from the persisted cursor; when the block it stopped at is no longer on the
    chain (a reorg), rewinds to the last scanned block that still is. Returns how many
    deposits it recorded. Two runs at once (a beat handing over) scan the same blocks, each
    deposit recorded once; the cursor moves only from where its run found it, so the run
    that falls behind stops.
    """
    max_blocks = settings.KIBO_WATCHER_MAX_BLOCKS
    head, head_timestamp = chain.newest_block(network)
    safe_head = chain.final_block(network, head=head)
    cursor = ChainCursor.objects.filter(network=network).first()
    if cursor is None:  # first run: look back one step, then follow the chain
        start = max(0, safe_head - max_blocks)
        cursor, _ = ChainCursor.objects.get_or_create(  # another run may make it first
            network=network,
            defaults={"block_number": start, "block_hash": _known_block_hash(network, start)},
        )
    found: tuple[int, str] | None = (cursor.block_number, cursor.block_hash)
    if chain.block_hash(network, cursor.block_number) != cursor.block_hash:
        cursor = _rewind(network, cursor, max_blocks)

    recorded = 0
    while found is not None and cursor.block_number < safe_head:
        first, last = cursor.block_number + 1, min(safe_head, cursor.block_number + max_blocks)
        for incoming in chain.incoming_between(
            network, recipient=escrow_address(), from_block=first, to_block=last
        ):
            if deposit_record(incoming=incoming) is not None:
                recorded += 1
        # None when another run moved the cursor meanwhile: it carries on from there
        found = _advance(cursor, found, last, _known_block_hash(network, last))
    ChainCursor.objects.filter(network=network).update(
        head_number=head,
        head_time=datetime.fromtimestamp(head_timestamp, tz=UTC),
        checked_at=timezone.now(),
    )
    return recorded


def _known_block_hash(network: str, number: int) -> str:
    """The hash of a block the node has; ChainUnavailable (try again later) if it has not."""
    found = chain.block_hash(network, number)
    if found is None:
        raise chain.ChainUnavailable(f"The {network} node does not know block {number} yet.")
    return found


def _rewind(network: str, cursor: ChainCursor, max_blocks: int) -> ChainCursor:
    for scanned in ScannedBlock.objects.filter(network=network).order_by("-number"):
        if chain.block_hash(network, scanned.number) == scanned.hash:
            break
        scanned.delete()
    else:
        scanned = None
    logger.warning(
        "reorg on %s: rewinding the deposit watcher from block %s to %s",
        network,
        cursor.block_number,
        scanned.number if scanned else "an earlier block",
    )
    if scanned is None:
        cursor.block_number = max(0, cursor.block_number - max_blocks)
        cursor.block_hash = _known_block_hash(network, cursor.block_number)
    else:
        cursor.block_number, cursor.block_hash = scanned.number, scanned.hash
    return cursor


@transaction.atomic
def _advance(
    cursor: ChainCursor, found: tuple[int, str], number: int, block_hash: str
) -> tuple[int, str] | None:
    """Move the cursor to `number` if it is still where this run `found` it (compare and
    set); the new position, or None when another run moved it first."""
    block_number, stored_hash = found
    moved = ChainCursor.objects.filter(
        network=cursor.network, block_number=block_number, block_hash=stored_hash
    ).update(block_number=number, block_hash=block_hash, updated_at=timezone.now())
    if not moved:
        return None
    cursor.block_number, cursor.block_hash = number, block_hash
    ScannedBlock.objects.update_or_create(
        network=cursor.network, number=number, defaults={"hash": block_hash}
    )
    stale = ScannedBlock.objects.filter(network=cursor.network).order_by("-number")[
        SCANNED_BLOCKS_KEPT:
    ]
    ScannedBlock.objects.filter(pk__in=[s.pk for s in stale]).delete()
    return number, block_hash
