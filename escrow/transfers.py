"""Transfers out of escrow (release to an ally, refund to a user, return of a deposit), each
sent exactly once whatever crashes.

The protocol:
1. `transfer_create` writes the intent (an outbox row) in the caller's transaction.
2. Signing, under the row lock and the sending wallet's nonce-cursor lock (one signer per
   wallet at a time): check what the wallet may spend (`escrow_funds`: its balance less what
   transfers signed before will still take), take the next nonce from the database, sign,
   and store the raw bytes and their hash. Only after that commits is anything sent. A
   transfer the wallet cannot cover yet is WAITING: staff are told once, and the sweep signs
   it as soon as the wallet is funded.
3. Broadcasting sends the stored bytes. Sending them again is harmless: the node answers
   "already known", or "nonce too low" once they are mined.
4. Checking looks up the receipts of every hash signed at the transfer's nonce; once one is
   mined with enough confirmations the transfer settles (or fails, if it reverted). A
   transaction next in line but pending past KIBO_TRANSFER_STUCK_SECONDS is replaced with
   the same nonce and higher fees; every hash is kept, and whichever is mined wins.

A transfer is given up (FAILED, for staff to retry) only when it cannot succeed and nothing
it signed can still mine: the node predicts a revert, it reverted, or its nonce was used by
a transaction Kibo did not sign. A retry re-checks what it signed
before, and keeps the nonce while that nonce is unused, so it can never pay twice.

`transfer_process` runs these steps as far as they go now; the worker calls it when a
transfer is created and beat calls it for every unfinished transfer, so a crash at any point
is picked up where it stopped.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, When
from django.utils import timezone

from audit.models import Action
from audit.services import log_action
from escrow import chain, checkpoints
from escrow.accounts import escrow_account_close
from escrow.amounts import format_base_units
from escrow.locks import lock_nonce_cursor, lock_transfer
from escrow.models import EscrowAccount, NonceCursor, SignedTransaction, Transfer
from escrow.networks import network_spec
from escrow.outcomes import outcomes
from escrow.selectors import Funds, escrow_address, escrow_funds
from escrow.sender import sender_paused
from escrow.signers import SignerUnavailable, escrow_signer
from kibo import logs
from kibo.errors import Conflict
from kibo.telemetry import TRANSFERS_SENT

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferIntent:
    """What to send: the outbox row `transfers_create` writes for it."""

    purpose: str
    network: str
    token: str
    recipient: str
    amount_base: int
    order_id: uuid.UUID | None = None
    deposit_id: uuid.UUID | None = None
    held_until: datetime | None = None  # HELD until then (a release the payer may dispute)


def transfers_create(intents: list[TransferIntent]) -> list:
    """Record the intents to send, each once, in the caller's transaction: one INSERT,
    whatever their number; an intent already recorded is left as it is (the unique
    constraints decide: one RELEASE or REFUND per order, one RETURN per deposit). After the
    transaction commits the worker is told about the new ones in one message. Returns the
    ids of the transfers this call created."""
    if not intents:
        return []
    pairs = {(i.network, i.token) for i in intents}
    contracts = {(net, tok): network_spec(net).token(tok).address for net, tok in pairs}
    columns: list[list[Any]] = [
        [i.purpose for i in intents],
        [i.order_id for i in intents],
        [i.deposit_id for i in intents],
        [i.network for i in intents],
        [i.token for i in intents],
        [contracts[i.network, i.token] for i in intents],
        [i.recipient for i in intents],
        [str(i.amount_base) for i in intents],  # uint256 does not fit a bigint
        [Transfer.Status.HELD if i.held_until else Transfer.Status.PENDING for i in intents],
        [i.held_until for i in intents],
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO transfers (id, purpose, order_id, deposit_id, network, token,
                                   token_address, from_address, recipient, amount_base, status,
                                   held_until, attempts, last_error, shortfall_coin, created_at,
                                   updated_at)
            SELECT gen_random_uuid(), t.purpose, t.order_id, t.deposit_id, t.network, t.token,
                   t.token_address, %s, t.recipient, t.amount_base, t.status, t.held_until, 0,
                   '', '', now(), now()
            FROM unnest(%s::text[], %s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::text[],
                        %s::text[], %s::numeric[], %s::text[], %s::timestamptz[])
                 AS t (purpose, order_id, deposit_id, network, token, token_address, recipient,
                       amount_base, status, held_until)
            ON CONFLICT DO NOTHING
            RETURNING id, status, purpose
            """,
            [escrow_address(), *columns],
        )
        rows = cursor.fetchall()
    pending: dict[bool, list] = {False: [], True: []}  # is it a return? -> ids
    for pk, status, purpose in rows:
        if status == Transfer.Status.PENDING:
            pending[purpose == Transfer.Purpose.RETURN].append(pk)
    for returns, ids in pending.items():
        if ids:
            transaction.on_commit(partial(_enqueue, ids, returns=returns))
    return [pk for pk, _, _ in rows]


def transfer_create(**fields: Any) -> Transfer:
    """Record one intent to send (see transfers_create); returns its transfer."""
    intent = TransferIntent(**fields)
    transfers_create([intent])
    if intent.deposit_id is not None:
        return Transfer.objects.get(deposit_id=intent.deposit_id, purpose=Transfer.Purpose.RETURN)
    assert intent.order_id is not None, "a payout or refund is for an order"
    return Transfer.objects.get(order_id=intent.order_id, purpose=intent.purpose)


# The worker's task that drives new transfers (escrow.tasks declares it under this name).
# Sent by name: the tasks are an interface on top of this module, which never imports them.
PROCESS_TRANSFERS = "escrow.tasks.process_transfers"


def _enqueue(transfer_ids, *, returns: bool = False) -> None:
    """Tell the worker; returns on their own queue, so a flood of them never stands in
    front of a payout or a refund."""
    queue = settings.KIBO_RETURNS_QUEUE if returns else settings.KIBO_CHAIN_QUEUE
    current_app.send_task(PROCESS_TRANSFERS, args=[[str(pk) for pk in transfer_ids]], queue=queue)


def _returns_in_flight(network: str) -> bool:
    """Whether KIBO_RETURNS_IN_FLIGHT returns are signed and not yet mined on `network`: a
    wallet's nonces mine in order, so a payout signed after a hundred returns would wait
    for all of them. The next return waits for the sweep instead."""
    signed = Transfer.objects.filter(
        network=network, purpose=Transfer.Purpose.RETURN, status=Transfer.Status.SIGNED
    )
    return signed.count() >= settings.KIBO_RETURNS_IN_FLIGHT


def transfer_process(*, transfer_id) -> Transfer:
    """Drive one transfer as far as it can go now; safe to call any number of times at once.
    Nothing is signed or sent while the sender is paused (escrow.sender): after a restore
    or a failover, until recovery has matched the chain to the records."""
    if sender_paused():
        return Transfer.objects.get(pk=transfer_id)
    with logs.bound(transfer_id=transfer_id):
        transfer = _transfer_sign(transfer_id=transfer_id)
        with logs.bound(order_id=transfer.order_id):
            if transfer.status != Transfer.Status.SIGNED:
                return transfer
            checkpoints.reached("transfer-after-store")
            _transfer_broadcast(transfer)
            checkpoints.reached("transfer-after-broadcast")
            return _transfer_check(transfer_id=transfer_id)


def _take_nonce(cursor: NonceCursor) -> int:
    """The wallet's next nonce, from the database; never the same one twice."""
    chain_next = chain.nonce_of(cursor.network, cursor.address)
    nonce = max(cursor.next_nonce, chain_next)  # the chain is ahead if the key sent elsewhere
    cursor.next_nonce = nonce + 1
    cursor.save(update_fields=["next_nonce"])
    return nonce


def _count_finished(transfer: Transfer) -> None:
    labels = (transfer.purpose, transfer.network, transfer.status)
    transaction.on_commit(lambda: TRANSFERS_SENT.labels(*labels).inc())


def _fail(transfer: Transfer, reason: str) -> None:
    """Give the transfer up for staff. Only ever when nothing it signed can still mine."""
    transfer.status = Transfer.Status.FAILED
    transfer.last_error = reason
    transfer.save(update_fields=["status", "last_error", "updated_at"])
    _count_finished(transfer)
    log_action(
        action=Action.TRANSFER_FAILED,
        order_id=transfer.order_id,
        metadata={"transfer": str(transfer.pk), "purpose": transfer.purpose, "reason": reason},
    )
    logger.warning("transfer %s failed: %s", transfer.pk, reason)


def _attempts_at_nonce(transfer: Transfer) -> list[SignedTransaction]:
    """The signed transactions that can still decide the transfer, newest first: those at its
    current nonce. Attempts at an earlier nonce are dead: that nonce was used on chain."""
    if transfer.nonce is None:
        return []
    return list(transfer.signed.filter(nonce=transfer.nonce).order_by("-created_at"))


def _mined(transfer: Transfer) -> chain.Receipt | None:
    for attempt in _attempts_at_nonce(transfer):
        mined = chain.receipt(transfer.network, attempt.tx_hash)
        if mined is not None:
            return mined
    return None


def _wait_for_funds(transfer: Transfer, funds: Funds, *, needs: int, decimals: int) -> Transfer:
    """The wallet cannot cover the transfer yet: it waits, and the sweep tries it again until
    the wallet is funded. Staff hear of it once, when it starts waiting."""
    shortfall = needs - funds.free
    held, free, needed, short = format_base_units(
        funds.held, max(funds.free, 0), needs, shortfall, decimals=decimals, symbol=funds.symbol
    )
    reason = (
        f"waiting for funds: the escrow wallet holds {held}, {free} of it free after the "
        f"transfers signed before this one; this transfer needs {needed} ({short} short)"
    )
    started = transfer.status != Transfer.Status.WAITING
    transfer.status = Transfer.Status.WAITING
    transfer.shortfall_base, transfer.shortfall_coin = shortfall, funds.symbol
    transfer.last_error = reason
    transfer.save(
        update_fields=["status", "shortfall_base", "shortfall_coin", "last_error", "updated_at"]
    )
    if started:
        log_action(
            action=Action.TRANSFER_WAITING,
            order_id=transfer.order_id,
            metadata={
                "transfer": str(transfer.pk),
                "purpose": transfer.purpose,
                "coin": funds.symbol,
                "shortfall_base": str(shortfall),
            },
        )
        logger.error("transfer %s %s; fund the escrow wallet", transfer.pk, reason)
    return transfer


def _sign_and_store(transfer: Transfer, *, token, nonce: int, gas: int, fees) -> SignedTransaction:
    """Sign the transfer and keep the exact bytes; nothing is sent before this commits."""
    signer = escrow_signer()
    if signer.address != transfer.from_address:  # the wallet changed under a queued transfer
        raise SignerUnavailable(
            f"the signer is for {signer.address}, the transfer from {transfer.from_address}"
        )
    signed = chain.sign_transfer(
        transfer.network,
        signer=signer,
        token=token,
        to=transfer.recipient,
        amount_base=int(transfer.amount_base),
        nonce=nonce,
        gas=gas,
        fees=fees,
    )
    stored = SignedTransaction.objects.create(
        transfer=transfer,
        nonce=nonce,
        raw_tx=signed.raw_tx,
        tx_hash=signed.tx_hash,
        max_fee_per_gas=signed.max_fee_per_gas,
        max_priority_fee_per_gas=signed.max_priority_fee_per_gas,
    )
    transaction.on_commit(
        lambda: logger.info(
            "%s transfer signed at nonce %s: %s", transfer.purpose, nonce, signed.tx_hash
        )
    )
    return stored


@transaction.atomic(durable=True)  # what it signs is stored before anything is broadcast
def _transfer_sign(*, transfer_id) -> Transfer:
    transfer = lock_transfer(transfer_id)
    if transfer.status not in (Transfer.Status.PENDING, Transfer.Status.WAITING):
        return transfer
    network, token = transfer.network, network_spec(transfer.network).token(transfer.token)
    previous = _attempts_at_nonce(transfer)
    kept = transfer.nonce if previous else None  # a retry keeps its nonce while it is unused
    if kept is not None:  # what became of what it signed before?
        mined = _mined(transfer)
        if mined is not None and mined.status == 1:
            transfer.status = Transfer.Status.SIGNED  # it went through; checking settles it
            transfer.save(update_fields=["status", "updated_at"])
            return transfer
        if mined is not None or chain.nonce_of(network, transfer.from_address) > kept:
            previous, kept, transfer.nonce = [], None, None  # used up: take a new one

    cursor = lock_nonce_cursor(network, transfer.from_address)
    if transfer.purpose == Transfer.Purpose.RETURN and kept is None and _returns_in_flight(network):
        return transfer  # stays PENDING: returns never take the nonces ahead of payouts
    gas_coin = network_spec(network).gas_coin
    funds = escrow_funds(
        network=network,
        address=transfer.from_address,
        coins=(token, gas_coin),
        excluding=transfer.pk,
    )
    amount = int(transfer.amount_base)
    if funds[token.symbol].free < amount:
        return _wait_for_funds(transfer, funds[token.symbol], needs=amount, decimals=token.decimals)
    try:
        gas = chain.estimate_transfer_gas(
            network, token, transfer.recipient, amount, sender=transfer.from_address
        )
    except chain.TransferWouldFail as predicted:
        _fail(transfer, f"the node predicts this transfer would fail: {predicted.reason}")
        return transfer
    fees = chain.suggested_fees(network)
    if previous:  # it replaces our own transaction, which may still wait in a pool
        latest = previous[0]
        fees = chain.bumped_fees(
            (int(latest.max_fee_per_gas), int(latest.max_priority_fee_per_gas)), fees
        )
    needs_gas = gas * fees[0] + (amount if token.is_native else 0)
    if funds[gas_coin.symbol].free < needs_gas:
        return _wait_for_funds(
            transfer, funds[gas_coin.symbol], needs=needs_gas, decimals=gas_coin.decimals
        )

    nonce = kept if kept is not None else _take_nonce(cursor)
    checkpoints.reached("transfer-after-nonce")
    _sign_and_store(transfer, token=token, nonce=nonce, gas=gas, fees=fees)
    if transfer.status == Transfer.Status.WAITING:
        logger.info("transfer %s has its funds now and is signed", transfer.pk)
    transfer.status = Transfer.Status.SIGNED
    transfer.nonce, transfer.gas = nonce, gas
    transfer.attempts += 1
    transfer.shortfall_base, transfer.shortfall_coin, transfer.last_error = None, "", ""
    transfer.save(
        update_fields=[
            "status",
            "nonce",
            "gas",
            "attempts",
            "shortfall_base",
            "shortfall_coin",
            "last_error",
            "updated_at",
        ]
    )
    return transfer


def _transfer_broadcast(transfer: Transfer) -> None:
    latest = _attempts_at_nonce(transfer)[0]
    try:
        chain.broadcast(transfer.network, latest.raw_tx)
    except chain.Rejected as rejected:
        if rejected.already_known or rejected.nonce_too_low:
            return  # sent before, or mined: the check finds out which
        _transfer_refused(transfer_id=transfer.pk, reason=rejected.reason)
    else:
        logger.info("transfer sent to %s: %s", transfer.network, latest.tx_hash)


@transaction.atomic
def _transfer_refused(*, transfer_id, reason: str) -> None:
    """Recorded for staff to see. The transfer stays SIGNED: its bytes may still sit in some
    node's pool and mine, so it is neither given up nor ever sent with a new nonce."""
    transfer = lock_transfer(transfer_id)
    if transfer.status != Transfer.Status.SIGNED:
        return
    transfer.attempts += 1
    transfer.last_error = f"the node refused the transaction: {reason}"
    transfer.save(update_fields=["attempts", "last_error", "updated_at"])
    if transfer.attempts == settings.KIBO_TRANSFER_ALERT_ATTEMPTS:
        logger.error(
            "transfer %s refused %s times; staff should look: %s",
            transfer.pk,
            transfer.attempts,
            reason,
        )


def transfer_settle_mined(*, transfer_id) -> Transfer:
    """Settle a SIGNED transfer whose transaction the chain has mined and made final; never
    signs or sends anything (recovery runs it while the sender is paused)."""
    transfer = Transfer.objects.get(pk=transfer_id)
    if transfer.status == Transfer.Status.SIGNED and (mined := _mined(transfer)) is not None:
        return _settle_mined(transfer, mined)
    return transfer


def _settle_mined(transfer: Transfer, mined: chain.Receipt) -> Transfer:
    if mined.block_number > chain.final_block(transfer.network):
        return transfer
    if mined.status == 1:
        return _transfer_settle(transfer_id=transfer.pk, mined=mined)
    return _transfer_reverted(transfer_id=transfer.pk, mined=mined)


def _transfer_check(*, transfer_id) -> Transfer:
    transfer = Transfer.objects.get(pk=transfer_id)
    if transfer.status != Transfer.Status.SIGNED:
        return transfer
    mined = _mined(transfer)
    if mined is not None:
        return _settle_mined(transfer, mined)

    assert transfer.nonce is not None  # a SIGNED transfer has its nonce (transfers_signed_...)
    next_nonce = chain.nonce_of(transfer.network, transfer.from_address)
    if next_nonce > transfer.nonce:
        return _transfer_nonce_lost(transfer_id=transfer_id)
    latest = _attempts_at_nonce(transfer)[0]
    stuck_since = timezone.now() - timedelta(seconds=settings.KIBO_TRANSFER_STUCK_SECONDS)
    # Higher fees help only the transaction next in line; one waiting behind an earlier
    # nonce is not stuck itself.
    if next_nonce == transfer.nonce and latest.created_at <= stuck_since:
        replacement = _transfer_replace(transfer_id=transfer_id, latest_id=latest.pk)
        if replacement is not None:
            try:
                chain.broadcast(transfer.network, replacement.raw_tx)
            except chain.Rejected as rejected:
                _transfer_refused(transfer_id=transfer_id, reason=rejected.reason)
    return transfer


@transaction.atomic(durable=True)  # what it signs is stored before anything is broadcast
def _transfer_replace(*, transfer_id, latest_id) -> SignedTransaction | None:
    """Sign the same transfer again with the same nonce and at least 10 % higher fees."""
    transfer = lock_transfer(transfer_id)
    attempts = _attempts_at_nonce(transfer)
    if transfer.status != Transfer.Status.SIGNED or not attempts or attempts[0].pk != latest_id:
        return None  # someone else settled or replaced it meanwhile
    latest = attempts[0]
    fees = chain.bumped_fees(
        (int(latest.max_fee_per_gas), int(latest.max_priority_fee_per_gas)),
        chain.suggested_fees(transfer.network),
    )
    if fees[0] > settings.KIBO_MAX_FEE_PER_GAS:
        transfer.last_error = (
            f"stuck, but a replacement would offer more than the cap of "
            f"{settings.KIBO_MAX_FEE_PER_GAS} wei per gas"
        )
        transfer.save(update_fields=["last_error", "updated_at"])
        return None
    logger.info("replacing stuck transaction %s of transfer %s", latest.tx_hash, transfer_id)
    assert transfer.nonce is not None and transfer.gas is not None  # SIGNED: both are set
    return _sign_and_store(
        transfer,
        token=network_spec(transfer.network).token(transfer.token),
        nonce=transfer.nonce,
        gas=transfer.gas,
        fees=fees,
    )


@transaction.atomic
def _transfer_settle(*, transfer_id, mined: chain.Receipt) -> Transfer:
    """The transfer is mined with enough confirmations: it is CONFIRMED, its order hears of it
    (escrow.outcomes), and its escrow account closes, all in one transaction."""
    transfer = lock_transfer(transfer_id)
    if transfer.status == Transfer.Status.CONFIRMED:
        return transfer
    transfer.status = Transfer.Status.CONFIRMED
    transfer.mined_tx_hash = mined.tx_hash
    transfer.fee_paid_base = (transfer.fee_paid_base or 0) + mined.fee_paid  # and any revert's
    transfer.confirmed_at = timezone.now()
    transfer.last_error = ""
    transfer.save(
        update_fields=[
            "status",
            "mined_tx_hash",
            "fee_paid_base",
            "confirmed_at",
            "last_error",
            "updated_at",
        ]
    )
    _count_finished(transfer)
    transaction.on_commit(
        lambda: logger.info("transfer confirmed in block %s: %s", mined.block_number, mined.tx_hash)
    )
    # The order first (its lock, then its account's: the order of kibo.locks). A payout or
    # refund has its order, a return its deposit (transfers_order_purposes_have_order,
    # transfers_return_has_deposit).
    if transfer.purpose == Transfer.Purpose.RELEASE:
        assert transfer.order_id is not None
        outcomes().release_confirmed(order_id=transfer.order_id, tx_hash=mined.tx_hash)
        escrow_account_close(order_id=transfer.order_id, status=EscrowAccount.Status.RELEASED)
    elif transfer.purpose == Transfer.Purpose.REFUND:
        assert transfer.order_id is not None
        outcomes().refund_confirmed(order_id=transfer.order_id, tx_hash=mined.tx_hash)
        escrow_account_close(order_id=transfer.order_id, status=EscrowAccount.Status.REFUNDED)
    else:
        assert transfer.deposit is not None
        log_action(
            action=Action.DEPOSIT_RETURNED,
            order_id=transfer.deposit.order_id,
            metadata={
                "deposit_tx_hash": transfer.deposit.tx_hash,
                "tx_hash": mined.tx_hash,
                "to": transfer.recipient,
                "amount_base": str(transfer.amount_base),
                "token": transfer.token,
            },
        )
    return transfer


@transaction.atomic
def _transfer_reverted(*, transfer_id, mined: chain.Receipt) -> Transfer:
    transfer = lock_transfer(transfer_id)
    if transfer.status == Transfer.Status.SIGNED:
        transfer.mined_tx_hash = mined.tx_hash
        transfer.fee_paid_base = (transfer.fee_paid_base or 0) + mined.fee_paid
        transfer.nonce = None  # used up on chain: a retry takes a new one
        transfer.save(update_fields=["mined_tx_hash", "fee_paid_base", "nonce", "updated_at"])
        _fail(transfer, f"the transaction {mined.tx_hash} reverted on chain; nothing was sent")
    return transfer


@transaction.atomic
def _transfer_nonce_lost(*, transfer_id) -> Transfer:
    transfer = lock_transfer(transfer_id)
    # Look again under the lock: another worker may have stored and sent a replacement, or
    # a lagging node may have missed the receipt the first time.
    if transfer.status == Transfer.Status.SIGNED and _mined(transfer) is None:
        _fail(
            transfer,
            f"nonce {transfer.nonce} was used by a transaction Kibo did not sign "
            "for this transfer; nothing was sent",
        )
    return transfer


@transaction.atomic
def transfer_retry(*, transfer_id) -> Transfer:
    """Staff: try a FAILED transfer again. It keeps its nonce unless the chain has used it."""
    transfer = lock_transfer(transfer_id)
    if transfer.status != Transfer.Status.FAILED:
        return transfer
    transfer.status = Transfer.Status.PENDING
    transfer.attempts = 0
    transfer.save(update_fields=["status", "attempts", "updated_at"])
    is_return = transfer.purpose == Transfer.Purpose.RETURN
    transaction.on_commit(lambda: _enqueue([transfer.pk], returns=is_return))
    return transfer


@transaction.atomic
def transfer_unhold(*, transfer_id, by: str, actor_wallet: str | None = None) -> Transfer:
    """A held release may go out now: its hold ended (`by` "timer") or the payer said the
    shop was paid (`by` "payer"). Anything not HELD is left as it is."""
    transfer = lock_transfer(transfer_id)
    if transfer.status != Transfer.Status.HELD:
        return transfer
    transfer.status, transfer.held_until = Transfer.Status.PENDING, None
    transfer.save(update_fields=["status", "held_until", "updated_at"])
    log_action(
        action=Action.RELEASE_UNHELD,
        order_id=transfer.order_id,
        actor_wallet=actor_wallet,
        metadata={"transfer": str(transfer.pk), "by": by},
    )

    def send() -> None:
        with logs.bound(transfer_id=transfer.pk, order_id=transfer.order_id):
            logger.info("%s transfer released from its hold by the %s", transfer.purpose, by)
            _enqueue([transfer.pk])

    transaction.on_commit(send)
    return transfer


@transaction.atomic
def transfer_freeze(*, transfer_id) -> Transfer:
    """The payer disputes a held release: it stays where it is until staff decide. Only a
    release still within its hold can be frozen, so nothing of it was ever signed."""
    transfer = lock_transfer(transfer_id)
    if transfer.status == Transfer.Status.FROZEN:
        return transfer
    held_until = transfer.held_until if transfer.status == Transfer.Status.HELD else None
    if held_until is None or held_until <= timezone.now():
        raise Conflict(f"transfer {transfer.pk} is {transfer.status}, not within its hold")
    transfer.status, transfer.held_until = Transfer.Status.FROZEN, None
    transfer.save(update_fields=["status", "held_until", "updated_at"])
    return transfer


@transaction.atomic
def transfer_thaw(*, transfer_id, cancel: bool) -> Transfer:
    """Staff decided a dispute about a frozen release: it goes out (`cancel` False), or it
    is cancelled and never signed (True: the payer is refunded instead)."""
    transfer = lock_transfer(transfer_id)
    target = Transfer.Status.CANCELLED if cancel else Transfer.Status.PENDING
    if transfer.status != Transfer.Status.FROZEN:
        raise Conflict(f"transfer {transfer.pk} is {transfer.status}, not frozen")
    transfer.status = target
    transfer.save(update_fields=["status", "updated_at"])
    if not cancel:
        transaction.on_commit(lambda: _enqueue([transfer.pk]))
    return transfer


def transfers_unhold_due(*, limit: int = 200) -> int:
    """Let go of the held releases whose hold has ended; returns how many."""
    due = list(
        Transfer.objects.filter(status=Transfer.Status.HELD, held_until__lte=timezone.now())
        .order_by("held_until")
        .values_list("pk", flat=True)[:limit]
    )
    for transfer_id in due:
        transfer_unhold(transfer_id=transfer_id, by="timer")
    return len(due)


def transfers_process_unfinished(*, limit: int = 200) -> int:
    """Beat's safety net: let go of the releases whose hold ended, then push every
    unfinished transfer on, payouts and refunds before returns. Returns how many it looked
    at."""
    transfers_unhold_due(limit=limit)
    returns_last = Case(When(purpose=Transfer.Purpose.RETURN, then=1), default=0)
    unfinished = list(
        Transfer.objects.filter(status__in=Transfer.UNFINISHED)
        .order_by(returns_last, "created_at")
        .values_list("pk", "network")[:limit]
    )
    unreachable: set[str] = set()
    for transfer_id, network in unfinished:
        if network in unreachable:
            continue
        try:
            transfer_process(transfer_id=transfer_id)
        except chain.ChainUnavailable:
            unreachable.add(network)
        except Exception:
            logger.exception("transfer %s could not be processed; it stays queued", transfer_id)
    return len(unfinished)
