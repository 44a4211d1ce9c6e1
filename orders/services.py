"""Every change of an order's state, one function per transition of DESIGN.md's table.

Each transition runs in one transaction: it locks the rows it changes in the order
kibo.locks writes down (users before orders before transfers, so two transitions never
deadlock), returns quietly when the order is already where the caller wants it, raises a
domain error for an illegal move, and writes its audit entry in the same transaction. The
database trigger adds the matching STATUS_CHANGED entry.
"""

import logging
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.db.models.functions import Least
from django.utils import timezone
from django.utils.translation import gettext as _

from allies.models import AllyPenalty
from allies.selectors import approved_application, is_ally_penalized, standing_generation
from allies.services import allies_penalize
from audit.models import Action
from audit.services import log_action, log_actions
from escrow.accounts import escrow_account_open
from escrow.amounts import format_amounts
from escrow.models import TX_HASH_RE, Transfer
from escrow.networks import is_enabled, network_spec
from escrow.services import escrow_release_create, refunds_create
from escrow.transfers import transfer_unhold
from kibo import config
from kibo.cache import renew_generations
from kibo.db import in_callers_transaction, violated_constraint
from kibo.locks import lock_free_users, lock_user, lock_user_if_free, lock_users
from kibo.models import User
from kibo.services import wallet_refuse_if_blocked, wallet_refuse_if_still_blocked
from kibo.telemetry import ORDER_TRANSITIONS, ORDER_WAIT
from orders.alerts import ally_payout_confirmed, payer_told
from orders.board import queue_generation
from orders.calls import call_allies_on_commit, call_answered, calls_unanswered
from orders.errors import (
    AllyNotEligible,
    IllegalTransition,
    InvalidOrder,
    OpenOrderExists,
    OrderAlreadyTaken,
    OrderNotFound,
    Underpaid,
)
from orders.locks import lock_order, lock_order_if_free, lock_orders, order_pk
from orders.models import OPEN_STATUSES, DailyStats, Dispute, LateProof, Order, OrderStatus
from orders.proofs import Receipt, read_receipt
from orders.qr import parse_qr
from orders.quoting import order_quote, parse_amount_fiat
from orders.selectors import business_today, day_figures
from quotes.models import COUNTRY_FIAT, Fiat, Token
from quotes.pricing import TOKEN_DECIMALS

logger = logging.getLogger(__name__)

TIMEOUTS: dict[str, config.Option[timedelta]] = {  # how long an order may stay in each open state
    OrderStatus.PENDING_PAYMENT: config.PENDING_PAYMENT_TIMEOUT,
    OrderStatus.AVAILABLE: config.AVAILABLE_TIMEOUT,
    OrderStatus.TAKEN: config.TAKEN_TIMEOUT,
}
WAIT_STEPS: dict[str, str] = {OrderStatus.TAKEN: "taken", OrderStatus.COMPLETED: "completed"}
REPUTATION_MAX = Decimal("5.00")
REPUTATION_GAIN = Decimal("0.05")


@in_callers_transaction
def _enter(order: Order, status: str, *, now: datetime, fields: tuple[str, ...] = ()) -> None:
    """Move the order (which the caller has locked) to `status` and start that state's
    timer (none for final states)."""
    if OrderStatus.AVAILABLE in (order.status, status):
        renew_generations(queue_generation(order.fiat_currency))
    if OrderStatus.TAKEN in (order.status, status):
        renew_generations(standing_generation(order.ally_id))
    _record_transitions([(order.pk, order.status, status)])
    step = WAIT_STEPS.get(status)
    if step and order.paid_at:
        waited = (now - order.paid_at).total_seconds()
        transaction.on_commit(lambda: ORDER_WAIT.labels(step).observe(waited))
    order.status = status
    timeout = TIMEOUTS.get(status)
    order.expires_at = now + timeout.get() if timeout else None
    order.save(update_fields=["status", "expires_at", "updated_at", *fields])


def _record_transitions(moves: list[tuple[uuid.UUID, str, str]]) -> None:
    """Once they commit, log each order's move (order, from, to) and count it by from and
    to (kibo.telemetry)."""

    def record() -> None:
        for order_id, before, after in moves:
            logger.info("order %s -> %s", before, after, extra={"order_id": str(order_id)})
        for (before, after), n in Counter((b, a) for _order, b, a in moves).items():
            ORDER_TRANSITIONS.labels(before, after).inc(n)

    transaction.on_commit(record)


def parse_tx_hash(tx_hash: str) -> str:
    tx_hash = (tx_hash or "").strip().lower()
    if not re.fullmatch(TX_HASH_RE, tx_hash):
        raise InvalidOrder(_("That is not a transaction hash (0x followed by 64 hex digits)."))
    return tx_hash


def order_create(*, user: User, **order) -> Order:
    """A user asks to pay a QR: price it with a fresh quote and wait for the deposit.

    The QR must be one Kibo pays in the user's country; when it fixes the amount, that is
    the amount. A blocked wallet is refused (and the attempt recorded).
    """
    wallet_refuse_if_blocked(wallet=user.wallet_address, attempt="pay a QR")
    return _order_create(user=user, **order)


@transaction.atomic
def _order_create(
    *,
    user: User,
    qr_data: str,
    amount_fiat: Decimal | str,
    fiat_currency: str,
    crypto_token: str,
    network: str,
) -> Order:
    if user.role != User.Role.USER or not user.is_active:
        raise InvalidOrder(_("Only a user account can pay a QR."))
    if fiat_currency not in Fiat.values:
        raise InvalidOrder(_("Kibo does not pay QRs in %(fiat)r.") % {"fiat": fiat_currency})
    if crypto_token not in Token.values:
        raise InvalidOrder(_("Kibo does not accept %(token)r.") % {"token": crypto_token})
    if not is_enabled(network):
        raise InvalidOrder(
            _("Kibo does not accept payments on %(network)r.") % {"network": network}
        )
    if crypto_token not in network_spec(network).tokens:  # no contract for it there
        raise InvalidOrder(
            _("Kibo does not accept %(token)s on %(network)s.")
            % {"token": crypto_token, "network": network_spec(network).label}
        )
    qr = parse_qr((qr_data or "").strip(), country=user.country)
    if qr.fiat != fiat_currency:
        raise InvalidOrder(
            _("This QR is paid in %(qr)s, not in %(fiat)s.")
            % {"qr": qr.fiat, "fiat": fiat_currency}
        )
    amount = parse_amount_fiat(amount_fiat, fiat_currency)
    if qr.amount_is_fixed and amount != qr.amount:
        raise InvalidOrder(
            _("This QR asks for exactly %(amount)s %(fiat)s.")
            % {"amount": qr.amount, "fiat": qr.fiat}
        )
    now = timezone.now()
    quoted = order_quote(amount_fiat=amount, fiat_currency=fiat_currency, crypto_token=crypto_token)
    quote, price = quoted.quote, quoted.price

    lock_user(user.pk)  # one user's concurrent requests queue here
    wallet_refuse_if_still_blocked(wallet=user.wallet_address)
    if Order.objects.filter(user=user, status__in=OPEN_STATUSES).exists():
        raise OpenOrderExists()
    try:
        with transaction.atomic():
            order = Order.objects.create(
                user=user,
                qr_data=qr.raw,
                amount_fiat=amount,
                fiat_currency=fiat_currency,
                amount_crypto=price.amount_crypto,
                fee_crypto=price.fee_crypto,
                crypto_token=crypto_token,
                network=network,
                exchange_rate=quote.rate,
                quote=quote,
                status=OrderStatus.PENDING_PAYMENT,
                expires_at=now + quoted.pay_within,
            )
    except IntegrityError as error:
        if violated_constraint(error) == "orders_one_open_per_user":
            raise OpenOrderExists() from None
        raise
    # The ORDER_CREATED audit entry is written by the database trigger, with the owner's wallet.
    return order


@transaction.atomic
def order_mark_paid(*, order_id, deposit_tx_hash: str, amount_received: Decimal) -> Order:
    """The deposit for the order is verified on chain: lock it in escrow, open it to allies."""
    tx_hash = parse_tx_hash(deposit_tx_hash)
    order = lock_order(order_id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        if order.deposit_tx_hash == tx_hash:
            return order
        raise IllegalTransition(
            _("This order is %(status)s; it no longer accepts a payment.")
            % {"status": order.get_status_display().lower()}
        )
    if amount_received < order.amount_crypto:
        received, due = format_amounts(
            amount_received, order.amount_crypto, decimals=TOKEN_DECIMALS[order.crypto_token]
        )
        raise Underpaid(
            _("%(received)s %(token)s received, %(due)s %(token)s due.")
            % {"received": received, "due": due, "token": order.crypto_token}
        )
    try:
        with transaction.atomic():  # a savepoint: a deposit claimed meanwhile leaves no trace
            escrow_account_open(
                order_id=order.pk,
                amount=order.amount_crypto,
                token=order.crypto_token,
                network=order.network,
                deposit_tx_hash=tx_hash,
            )
    except IntegrityError as error:
        if violated_constraint(error) != "escrow_accounts_one_per_deposit":
            raise
        raise InvalidOrder(_("This transaction has already paid for another order.")) from None
    now = timezone.now()
    order.deposit_tx_hash = tx_hash
    order.paid_at = now
    _enter(order, OrderStatus.AVAILABLE, now=now, fields=("deposit_tx_hash", "paid_at"))
    log_action(
        action=Action.PAYMENT_RECEIVED,
        order=order,
        actor_wallet=order.user.wallet_address,
        metadata={"tx_hash": tx_hash, "amount_received": str(amount_received)},
    )
    call_allies_on_commit(order)
    return order


def _ensure_ally_may_take(ally: User, *, now: datetime) -> None:
    if ally.role != User.Role.ALLY or not ally.is_active:
        raise AllyNotEligible(_("Only allies can take orders."))
    if not ally.verified:
        raise AllyNotEligible(_("Your ally account is waiting for approval."))
    if is_ally_penalized(ally=ally, at=now):
        raise AllyNotEligible(_("You are penalized and cannot take orders yet."))
    if Order.objects.filter(ally=ally, status=OrderStatus.TAKEN).exists():
        raise AllyNotEligible(_("Finish the order you already took first."))


def order_take(*, order_id, ally: User) -> Order:
    """An eligible ally claims an AVAILABLE order; of many at once, exactly one wins. A
    blocked wallet is refused (and the attempt recorded)."""
    wallet_refuse_if_blocked(wallet=ally.wallet_address, attempt="take an order")
    return _order_take(order_id=order_id, ally=ally)


@transaction.atomic
def _order_take(*, order_id, ally: User) -> Order:
    now = timezone.now()
    ally = lock_user(ally.pk)
    wallet_refuse_if_still_blocked(wallet=ally.wallet_address)
    order = lock_order(order_id)
    if order.status == OrderStatus.TAKEN and order.ally_id == ally.pk:
        return order
    _ensure_ally_may_take(ally, now=now)
    approved = approved_application(user=ally)
    if approved is None or COUNTRY_FIAT.get(approved.country) != order.fiat_currency:
        raise OrderNotFound()  # not on this ally's board: not the country staff approved
    if order.status == OrderStatus.TAKEN:
        raise OrderAlreadyTaken()
    if order.status != OrderStatus.AVAILABLE or order.timer_ran_out(now):
        raise IllegalTransition(_("This order is no longer available."))
    order.ally = ally
    order.taken_at = now
    _enter(order, OrderStatus.TAKEN, now=now, fields=("ally", "taken_at"))
    log_action(action=Action.ORDER_TAKEN, order=order, actor_wallet=ally.wallet_address)
    call_answered(order=order, ally_id=ally.pk)
    payer_told(order, "order-taken")
    return order


# Receipts an ally may send for one order after it ran out: enough for a mistaken one and
# the right one, not a way to fill staff's queue or the storage.
LATE_PROOFS_PER_ORDER = 3


class _ReceiptTooLate(Exception):
    pass


def order_complete(*, order_id, ally: User, proof) -> Order:
    """The ally who took the order uploads the bank receipt: the QR is paid.

    A receipt that comes after the order's timer ran out changes nothing: it is kept for
    staff to review (LateProof) and the ally is told so. A blocked wallet is refused (the
    order then runs out and its payer is refunded).
    """
    wallet_refuse_if_blocked(wallet=ally.wallet_address, attempt="upload a receipt")
    receipt = read_receipt(proof)
    name = default_storage.save(receipt.storage_name(), ContentFile(receipt.content))
    try:
        order = _order_complete(order_id=order_id, ally=ally, receipt=receipt, proof_name=name)
    except _ReceiptTooLate:
        try:
            _late_proof_keep(order_id=order_id, ally=ally, receipt=receipt, proof_name=name)
        except Exception:
            default_storage.delete(name)
            raise
        raise IllegalTransition(
            _(
                "This order expired before the receipt arrived. "
                "We kept the receipt for our staff to review."
            )
        ) from None
    except Exception:
        default_storage.delete(name)
        raise
    if order.proof_file.name != name:  # a repeated upload for an order already completed
        default_storage.delete(name)
    return order


@transaction.atomic
def _late_proof_keep(*, order_id, ally: User, receipt: Receipt, proof_name: str) -> None:
    order = lock_order(order_id)
    kept = LateProof.objects.filter(order=order, ally=ally)
    again = kept.filter(proof_sha256=receipt.sha256).exists()
    if not again and kept.count() >= LATE_PROOFS_PER_ORDER:
        raise IllegalTransition(
            _(
                "This order expired and you already sent %(count)s receipts for it; "
                "our staff will review those."
            )
            % {"count": LATE_PROOFS_PER_ORDER}
        )
    _late, created = LateProof.objects.get_or_create(
        order=order,
        ally=ally,
        proof_sha256=receipt.sha256,
        defaults={"proof_file": proof_name, "order_status": order.status},
    )
    if not created:  # the same late receipt again
        transaction.on_commit(lambda: default_storage.delete(proof_name))
        return
    log_action(
        action=Action.LATE_PROOF,
        order=order,
        actor_wallet=ally.wallet_address,
        metadata={"proof": proof_name, "sha256": receipt.sha256, "status": order.status},
    )


@transaction.atomic
def _order_complete(*, order_id, ally: User, receipt: Receipt, proof_name: str) -> Order:
    now = timezone.now()
    owner_id = Order.objects.filter(pk=order_pk(order_id)).values_list("user_id", flat=True)
    lock_users(ally.pk, *owner_id)
    wallet_refuse_if_still_blocked(wallet=ally.wallet_address)
    order = lock_order(order_id)
    if order.ally_id != ally.pk:
        raise OrderNotFound()
    if order.status == OrderStatus.COMPLETED:
        return order
    if order.status != OrderStatus.TAKEN or order.timer_ran_out(now):
        raise _ReceiptTooLate()
    reused = _("This receipt was already used for another order.")
    if Order.objects.filter(proof_sha256=receipt.sha256).exists():
        raise InvalidOrder(reused)
    order.proof_file.name = proof_name
    order.proof_sha256 = receipt.sha256
    order.completed_at = now
    try:
        with transaction.atomic():  # a savepoint: the same receipt completing another order
            _enter(
                order,
                OrderStatus.COMPLETED,
                now=now,
                fields=("proof_file", "proof_sha256", "completed_at"),
            )
    except IntegrityError as error:
        if violated_constraint(error) == "orders_one_order_per_receipt":
            raise InvalidOrder(reused) from None
        raise
    User.objects.filter(pk=ally.pk).update(
        successful_orders=F("successful_orders") + 1,
        reputation=Least(F("reputation") + REPUTATION_GAIN, REPUTATION_MAX),
    )
    User.objects.filter(pk=order.user_id).update(successful_orders=F("successful_orders") + 1)
    log_action(
        action=Action.PROOF_UPLOADED,
        order=order,
        actor_wallet=ally.wallet_address,
        metadata={"proof": proof_name, "sha256": receipt.sha256},
    )
    log_action(
        action=Action.ORDER_COMPLETED,
        order=order,
        actor_wallet=ally.wallet_address,
        metadata={"payout": str(order.payout_crypto), "fee": str(order.fee_crypto)},
    )
    escrow_release_create(
        order_id=order.pk,
        recipient=ally.wallet_address,
        payout=order.payout_crypto,
        hold=release_hold(ally_id=ally.pk),
    )
    payer_told(order, "order-paid")
    return order


@in_callers_transaction
def release_hold(*, ally_id) -> timedelta:
    """How long a payout to this ally waits for the payer's word: longer for a new ally's
    first NEW_ALLY_ORDERS completed orders (counting the one completing now)."""
    completed = User.objects.filter(pk=ally_id).values_list("successful_orders", flat=True)
    if completed.get() <= config.NEW_ALLY_ORDERS.get():
        return config.RELEASE_HOLD_NEW_ALLY.get()
    return config.RELEASE_HOLD.get()


def _expire(order: Order, *, now: datetime, reason: str, actor_wallet: str | None) -> None:
    orders_expire_locked(orders=[order], now=now, reason=reason, actor_wallet=actor_wallet)


@in_callers_transaction
def orders_expire_locked(
    *, orders: list[Order], now: datetime, reason: str, actor_wallet: str | None
) -> None:
    """Expire open orders the caller has locked (with their users and allies): one UPDATE,
    then in bulk the refunds of the paid ones, the penalties of the stalling allies and the
    audit entries (the trigger writes each STATUS_CHANGED)."""
    if not orders:
        return
    previous = {order.pk: order.status for order in orders}
    calls_unanswered(
        orders=[o for o in orders if o.status == OrderStatus.AVAILABLE],
        ran_out=reason == "timeout",
        now=now,
    )
    renew_generations(
        *{queue_generation(o.fiat_currency) for o in orders if o.status == OrderStatus.AVAILABLE},
        *{standing_generation(o.ally_id) for o in orders if o.status == OrderStatus.TAKEN},
    )
    Order.objects.filter(pk__in=previous).update(
        status=OrderStatus.EXPIRED, expires_at=None, updated_at=now
    )
    for order in orders:
        order.status, order.expires_at, order.updated_at = OrderStatus.EXPIRED, None, now
    _record_transitions([(pk, before, OrderStatus.EXPIRED) for pk, before in previous.items()])
    paid = (OrderStatus.AVAILABLE, OrderStatus.TAKEN)
    refunds_create(payers={o.pk: o.user.wallet_address for o in orders if previous[o.pk] in paid})
    stalled = [
        (o.ally, o)
        for o in orders
        if previous[o.pk] == OrderStatus.TAKEN and o.ally is not None  # taken: it has one
    ]
    if stalled:
        allies_penalize(
            stalled=stalled,
            reason=AllyPenalty.Reason.TIMEOUT,
            minutes=config.ALLY_PENALTY_MINUTES.get(),
        )
    log_actions(
        [
            {
                "action": Action.ORDER_EXPIRED,
                "order": order,
                "actor_wallet": actor_wallet,
                "metadata": {"from": previous[order.pk], "reason": reason},
            }
            for order in orders
        ]
    )


def order_confirm_paid(*, order_id, user: User) -> Order:
    """The payer says the shop got paid: the ally's held payout goes out now. Saying it
    again, or after the hold ended, changes nothing."""
    order = Order.objects.filter(pk=order_pk(order_id), user=user).first()
    if order is None:
        raise OrderNotFound()
    if order.status != OrderStatus.COMPLETED:
        raise IllegalTransition(_("Only a paid QR can be confirmed."))
    release = order.transfers.filter(purpose=Transfer.Purpose.RELEASE).first()
    if release is not None and release.status in (
        Transfer.Status.FROZEN,
        Transfer.Status.CANCELLED,
    ):
        raise IllegalTransition(_("You disputed this order; our staff decide what happens."))
    if release is not None:
        transfer_unhold(transfer_id=release.pk, by="payer", actor_wallet=user.wallet_address)
    return order


@transaction.atomic
def order_cancel(*, order_id, user: User) -> Order:
    """The owner gives up before an ally has taken the order; a deposit goes back."""
    order = lock_order(order_id)
    if order.user_id != user.pk:
        raise OrderNotFound()
    if order.status in (OrderStatus.EXPIRED, OrderStatus.REFUNDED):
        return order
    if order.status == OrderStatus.TAKEN:
        raise IllegalTransition(_("An ally is paying this QR right now; it can't be cancelled."))
    if order.status == OrderStatus.COMPLETED:
        raise IllegalTransition(_("This QR has already been paid."))
    _expire(order, now=timezone.now(), reason="cancelled", actor_wallet=user.wallet_address)
    return order


@transaction.atomic
def order_expire(*, order_id, skip_locked: bool = False) -> Order | None:
    """An open order whose timer ran out expires: refund a deposit, penalize a stalling ally.

    Returns the order, or None when skip_locked and another transaction holds it.
    """
    # The ally's row is locked before the order's, as everywhere. Only take() sets the
    # ally, and it also restarts the timer, so an ally that changes under us means "not due".
    pk = order_pk(order_id)
    ally_id = Order.objects.filter(pk=pk).values_list("ally_id", flat=True).first()
    if ally_id is not None:
        ally = lock_user_if_free(ally_id) if skip_locked else lock_user(ally_id)
        if ally is None:
            return None
    order = lock_order_if_free(order_id) if skip_locked else lock_order(order_id)
    if order is None:
        return None
    now = timezone.now()
    if (
        order.status not in OPEN_STATUSES
        or not order.timer_ran_out(now)
        or order.ally_id != ally_id
    ):
        return order
    _expire(order, now=now, reason="timeout", actor_wallet=None)
    return order


@transaction.atomic
def order_release_record(*, order_id, tx_hash: str) -> Order:
    """The ally's payout for a completed order is confirmed on chain."""
    tx_hash = parse_tx_hash(tx_hash)
    order = lock_order(order_id)
    if order.release_tx_hash == tx_hash:
        return order
    if order.status != OrderStatus.COMPLETED or order.release_tx_hash:
        raise IllegalTransition("Only a completed order's payout can be recorded, once.")
    order.release_tx_hash = tx_hash
    order.save(update_fields=["release_tx_hash", "updated_at"])
    log_action(
        action=Action.ESCROW_RELEASED,
        order=order,
        metadata={
            "tx_hash": tx_hash,
            "to": order.ally.wallet_address if order.ally else None,
            "payout": str(order.payout_crypto),
        },
    )
    ally_payout_confirmed(order)
    return order


@transaction.atomic
def order_refund_record(*, order_id, tx_hash: str) -> Order:
    """The refund of an expired order, or of a completed one whose payer's dispute staff
    upheld, is confirmed on chain."""
    tx_hash = parse_tx_hash(tx_hash)
    order = lock_order(order_id)
    if order.status == OrderStatus.REFUNDED:
        return order
    refundable = (OrderStatus.EXPIRED, OrderStatus.COMPLETED)
    queued = order.transfers.filter(purpose=Transfer.Purpose.REFUND).exists()
    if order.status not in refundable or not queued:
        raise IllegalTransition("Only an order with a refund queued can be refunded.")
    _enter(order, OrderStatus.REFUNDED, now=timezone.now())
    log_action(
        action=Action.REFUND_PROCESSED,
        order=order,
        actor_wallet=None,
        metadata={"tx_hash": tx_hash, "to": order.user.wallet_address},
    )
    payer_told(order, "order-refunded")
    return order


def orders_expire_due(*, batch_size: int = 1000, max_batches: int = 20) -> int:
    """Expire every order whose timer ran out, a batch per short transaction.

    Rows another transaction holds are skipped (the next sweep gets them). Bounded: at most
    batch_size * max_batches orders per call. Returns how many orders expired.
    """
    expired = 0
    skipped: set[uuid.UUID] = set()
    for _batch in range(max_batches):
        due = list(
            Order.objects.filter(status__in=OPEN_STATUSES, expires_at__lte=timezone.now())
            .exclude(pk__in=skipped)
            .order_by("expires_at")
            .values_list("pk", "ally_id")[:batch_size]
        )
        if not due:
            break
        try:
            done = _expire_batch(due)
        except Exception:
            logger.exception("a batch of due orders failed; expiring them one by one")
            done = _expire_one_by_one([pk for pk, _ in due])
        expired += len(done)
        skipped.update(pk for pk, _ in due if pk not in done)
        if len(due) < batch_size:
            break
    return expired


# What expiring reads of an order: its refund goes to the user, its penalty to the ally.
EXPIRY_FIELDS = (
    "id",
    "status",
    "fiat_currency",
    "expires_at",
    "user",
    "user__wallet_address",
    "ally",
    "ally__wallet_address",
)


@transaction.atomic(durable=True)  # a batch is its own transaction: one fails alone
def _expire_batch(due: Sequence[tuple[uuid.UUID, uuid.UUID | None]]) -> set[uuid.UUID]:
    """Lock what is free of the due orders (allies first, as everywhere) and expire them."""
    now = timezone.now()
    allies = lock_free_users({ally for _, ally in due if ally is not None})
    # Only take() sets the ally, and it also restarts the timer: an order whose ally
    # changed under us is no longer due, which the status and time checks see.
    due_now = (
        Order.objects.select_related("user", "ally")
        .only(*EXPIRY_FIELDS)
        .filter(
            pk__in=[pk for pk, ally in due if ally is None or ally in allies],
            status__in=OPEN_STATUSES,
            expires_at__lte=now,
        )
    )
    orders = [
        order
        for order in lock_orders(due_now, skip_locked=True)
        if order.ally_id is None or order.ally_id in allies
    ]
    orders_expire_locked(orders=orders, now=now, reason="timeout", actor_wallet=None)
    return {order.pk for order in orders}


def _expire_one_by_one(pks: list[uuid.UUID]) -> set[uuid.UUID]:
    """The slow path, for a batch one of whose orders fails: the others still expire."""
    done = set()
    for pk in pks:
        try:
            order = order_expire(order_id=pk, skip_locked=True)
        except Exception:
            logger.exception("could not expire order %s; the next sweep tries again", pk)
            continue
        if order is not None and order.status == OrderStatus.EXPIRED:
            done.add(pk)
    return done


ROLLUP_DAYS_KEPT = 30  # what the staff console draws


def daily_stats_rollup() -> int:
    """Beat: roll up each finished local day since the last one rolled up (at least the last
    two, whose orders may have expired after midnight; at most the console's thirty), and
    again the days of orders whose dispute staff decided since (a refund can come days
    later). Idempotent: a day rolled up again is overwritten. Returns the days written."""
    today = business_today()
    last = DailyStats.objects.aggregate(day=Max("day"), at=Max("updated_at"))
    first = today - timedelta(days=ROLLUP_DAYS_KEPT)
    days = set()
    if last["day"] is not None:
        first = max(first, min(last["day"], today - timedelta(days=2)))
        # an hour's margin: a refund is confirmed a little after its dispute is decided
        decided = Dispute.objects.filter(decided_at__gte=last["at"] - timedelta(hours=1))
        tz = timezone.get_default_timezone()
        days = {
            timezone.localtime(created, tz).date()
            for created in decided.values_list("order__created_at", flat=True)
        }
    days |= {first + timedelta(days=n) for n in range((today - first).days)}
    kept = sorted(d for d in days if today - timedelta(days=ROLLUP_DAYS_KEPT) <= d < today)
    for day in kept:
        figures = day_figures(day=day)
        with transaction.atomic():
            for fiat in Fiat.values:
                f = figures[fiat]
                DailyStats.objects.update_or_create(
                    day=day,
                    fiat_currency=fiat,
                    defaults={
                        "orders": f.orders,
                        "completed": f.completed,
                        "failed": f.failed,
                        "volume_fiat": f.volume_fiat,
                        "volume_crypto": {t: str(v) for t, v in f.volume_crypto.items()},
                        "timeouts": f.timeouts,
                        "median_paid_to_completed": f.median_paid_to_completed,
                        "active_allies": f.active_allies,
                    },
                )
    return len(kept)
