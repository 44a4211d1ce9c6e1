"""Money coming into escrow: what a user reports, and what the watcher finds on chain.

Both paths end in `deposit_record`, the one place a confirmed incoming transfer becomes a
Deposit: credited to the order it pays, or returned to its sender when no order can take it
(late, short, a second payment, the excess of an over-payment, an unknown sender).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from eth_utils import to_checksum_address

from audit.models import Action
from audit.services import log_action
from escrow import chain
from escrow.amounts import format_base_units, from_base_units, to_base_units
from escrow.models import ChainCursor, Deposit, ScannedBlock, Transfer
from escrow.networks import TokenSpec, network_spec
from escrow.selectors import escrow_address
from escrow.transfers import transfer_create
from kibo.errors import DomainError
from kibo.selectors import get_config, is_wallet_blocked
from orders.models import OPEN_STATUSES, Order, OrderStatus

logger = logging.getLogger(__name__)

SCANNED_BLOCKS_KEPT = 128


class DepositRejected(DomainError):
    """The reported transaction cannot pay the order; nothing was credited."""


@dataclass(frozen=True)
class DepositCheck:
    state: str  # "credited", "pending" or "returned"
    message: str


def _token_of(spec, incoming: chain.IncomingTransfer) -> TokenSpec | None:
    if incoming.token_address is None:
        return next((t for t in spec.tokens.values() if t.is_native), None)
    return spec.token_at(incoming.token_address)


def _treasury() -> set[str]:
    listed = get_config("ESCROW_TREASURY_ADDRESSES")
    return {to_checksum_address(a.strip()) for a in listed.split(",") if a.strip()}


def _why_not_creditable(
    order: Order | None, *, sender: str, network: str, token: TokenSpec, amount_base: int
) -> str | None:
    """Why this incoming transfer cannot pay the order, in the active language; None if it can."""
    if is_wallet_blocked(wallet=sender):
        return _("sent from %(sender)s, a wallet Kibo's staff blocked") % {"sender": sender}
    if order is None:
        return _("no open order from %(sender)s for %(token)s on %(network)s") % {
            "sender": sender,
            "token": token.symbol,
            "network": network,
        }
    if order.user.wallet_address != sender:
        return _("sent from %(sender)s, not from the order's wallet") % {"sender": sender}
    if (order.network, order.crypto_token) != (network, token.symbol):
        return _("the order expects %(token)s on %(network)s") % {
            "token": order.crypto_token,
            "network": order.network,
        }
    if order.status != OrderStatus.PENDING_PAYMENT:
        return _("the order was already %(status)s") % {
            "status": order.get_status_display().lower()
        }
    due = to_base_units(order.amount_crypto, token.decimals, round_up=True)
    if amount_base < due:
        received, owed = format_base_units(
            amount_base, due, decimals=token.decimals, symbol=token.symbol
        )
        return _("%(received)s received, %(due)s due") % {"received": received, "due": owed}
    return None


def deposit_record(*, incoming: chain.IncomingTransfer, order_hint: Order | None = None):
    """Turn a confirmed transfer into escrow into a Deposit, exactly once.

    Returns the Deposit, or None for a token Kibo does not accept (never touched).
    """
    spec = network_spec(incoming.network)
    token = _token_of(spec, incoming)
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
    except IntegrityError:  # recorded meanwhile by the watcher or a second request
        return Deposit.objects.get(**key)


@transaction.atomic
def _deposit_record(*, incoming, token: TokenSpec, order_hint, key) -> Deposit:
    from orders.services import order_mark_paid  # orders' services import escrow's

    fields = {
        **key,
        "block_number": incoming.block_number,
        "block_hash": incoming.block_hash,
        "token": token.symbol,
        "token_address": incoming.token_address,
        "sender": incoming.sender,
        "amount_base": incoming.amount_base,
    }
    if incoming.sender in _treasury():
        return Deposit.objects.create(
            **fields, outcome=Deposit.Outcome.TREASURY, reason="operator funding"
        )

    candidates = Order.objects.select_for_update(of=("self",)).select_related("user")
    if order_hint is not None:
        order = candidates.filter(pk=order_hint.pk).first()
    else:
        order = candidates.filter(
            user__wallet_address=incoming.sender,
            status=OrderStatus.PENDING_PAYMENT,
            network=incoming.network,
            crypto_token=token.symbol,
        ).first()
    with translation.override("en"):  # records and the audit trail are kept in English
        reason = _why_not_creditable(
            order,
            sender=incoming.sender,
            network=incoming.network,
            token=token,
            amount_base=incoming.amount_base,
        )
    if reason is None:
        due = to_base_units(order.amount_crypto, token.decimals, round_up=True)
        returned = incoming.amount_base - due
        deposit = Deposit.objects.create(
            **fields,
            order=order,
            credited_base=due,
            outcome=Deposit.Outcome.CREDITED,
            reason="the excess of an over-payment" if returned else "",
        )
        order_mark_paid(
            order_id=order.pk,
            deposit_tx_hash=incoming.tx_hash,
            amount_received=from_base_units(incoming.amount_base, token.decimals),
        )
    else:
        deposit = Deposit.objects.create(
            **fields, order=order, outcome=Deposit.Outcome.RETURNED, reason=reason
        )
        returned = incoming.amount_base
        log_action(
            action=Action.DEPOSIT_REJECTED,
            order=order,
            actor_wallet=incoming.sender,
            metadata={
                "tx_hash": incoming.tx_hash,
                "reason": reason,
                "amount_base": str(incoming.amount_base),
                "token": token.symbol,
            },
        )
    if returned > 0:
        transfer_create(
            purpose=Transfer.Purpose.RETURN,
            deposit=deposit,
            network=incoming.network,
            token=token.symbol,
            recipient=incoming.sender,
            amount_base=returned,
        )
    return deposit


def _has_open_order(*, senders: set[str], network: str) -> bool:
    """Whether one of these wallets is a Kibo user paying an order on the network."""
    return Order.objects.filter(
        user__wallet_address__in=senders, network=network, status__in=OPEN_STATUSES
    ).exists()


def deposit_verify(*, order: Order, tx_hash: str) -> DepositCheck:
    """Check the transaction the order's owner says paid it, and credit it when it did.

    Raises DepositRejected with a message for the user when it cannot pay the order.
    """
    network = order.network
    spec = network_spec(network)
    claimed = Deposit.objects.filter(network=network, tx_hash=tx_hash)
    if claimed.filter(order=order, outcome=Deposit.Outcome.CREDITED).exists():
        return DepositCheck("credited", _("Payment received. Looking for an ally to pay the QR."))
    if claimed.filter(outcome=Deposit.Outcome.CREDITED).exists():
        raise DepositRejected(_("This transaction already paid another order."))

    mined = chain.receipt(network, tx_hash)
    if mined is None:
        if chain.transaction_known(network, tx_hash):
            return DepositCheck("pending", _("Your payment is on its way; we'll keep checking."))
        raise DepositRejected(
            _(
                "No transaction with this hash exists on %(network)s. "
                "Check that you copied it whole and paid on the right network."
            )
            % {"network": spec.name}
        )
    if mined.status != 1:
        raise DepositRejected(
            _(
                "This transaction failed on chain, so no money moved. "
                "Try paying again from your wallet."
            )
        )
    escrow = escrow_address()
    incoming = [t for t in chain.incoming_in_receipt(network, mined) if t.recipient == escrow]
    if not incoming:
        raise DepositRejected(
            _("This transaction sent nothing to Kibo's escrow address %(escrow)s.")
            % {"escrow": escrow}
        )
    accepted = [t for t in incoming if _token_of(spec, t) is not None]
    if not accepted:
        expected = spec.token(order.crypto_token)
        if expected.is_native:
            how = _("Pay %(token)s as the network's own coin.")
        else:
            how = _("Pay %(token)s from the token contract %(contract)s.")
        raise DepositRejected(
            _("This transaction sent a token Kibo does not accept.")
            + " "
            + how % {"token": order.crypto_token, "contract": expected.address}
        )
    # Only the order's owner can attach a payment to it. Anyone can read a transaction hash,
    # and a stranger's payment must not be decided by whoever reports it: the watcher
    # records it by its sender.
    others = {t.sender for t in accepted if t.sender != order.user.wallet_address}
    accepted = [t for t in accepted if t.sender == order.user.wallet_address]
    if not accepted:
        if _has_open_order(senders=others, network=network):
            raise DepositRejected(_("This payment belongs to another order, not to this one."))
        raise DepositRejected(
            _(
                "This payment was not sent from your wallet %(wallet)s. If you sent it from "
                "another wallet, it will be returned to that wallet."
            )
            % {"wallet": order.user.wallet_address}
        )
    seen = chain.confirmations(network, mined.block_number)
    if seen < spec.confirmations:
        return DepositCheck(
            "pending",
            _("Payment seen; waiting for the network to confirm it (%(seen)s of %(needed)s).")
            % {"seen": seen, "needed": spec.confirmations},
        )

    deposits = [deposit_record(incoming=t, order_hint=order) for t in accepted]
    if any(d.order_id == order.pk and d.outcome == Deposit.Outcome.CREDITED for d in deposits):
        message = _("Payment received. Looking for an ally to pay the QR.")
        if any(d.amount_base > d.credited_base for d in deposits):
            message += " " + _("The extra you sent is being returned to your wallet.")
        return DepositCheck("credited", message)
    order.refresh_from_db()
    reasons = "; ".join(
        _why_not_creditable(
            order,
            sender=d.sender,
            network=d.network,
            token=spec.token(d.token),
            amount_base=d.amount_base,
        )
        or d.reason
        for d in deposits
    )
    return DepositCheck(
        "returned",
        _(
            "This payment can't be used for this order (%(reasons)s). "
            "It is being returned to the wallet that sent it."
        )
        % {"reasons": reasons},
    )


def deposits_watch(*, network: str) -> int:
    """Scan the network for transfers into escrow, up to the confirmed head, in bounded steps.

    Resumes from the persisted cursor; when the block it stopped at is no longer on the
    chain (a reorg), rewinds to the last scanned block that still is. Returns how many
    deposits it recorded.
    """
    spec = network_spec(network)
    max_blocks = settings.KIBO_WATCHER_MAX_BLOCKS
    safe_head = chain.head_block(network) - (spec.confirmations - 1)
    cursor = ChainCursor.objects.filter(network=network).first()
    if cursor is None:  # first run: look back one step, then follow the chain
        start = max(0, safe_head - max_blocks)
        cursor = ChainCursor(
            network=network, block_number=start, block_hash=chain.block_hash(network, start)
        )
    elif chain.block_hash(network, cursor.block_number) != cursor.block_hash:
        cursor = _rewind(network, cursor, max_blocks)

    recorded = 0
    while cursor.block_number < safe_head:
        first, last = cursor.block_number + 1, min(safe_head, cursor.block_number + max_blocks)
        for incoming in chain.incoming_between(
            network, recipient=escrow_address(), from_block=first, to_block=last
        ):
            if deposit_record(incoming=incoming) is not None:
                recorded += 1
        _advance(cursor, last, chain.block_hash(network, last))
    return recorded


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
        cursor.block_hash = chain.block_hash(network, cursor.block_number)
    else:
        cursor.block_number, cursor.block_hash = scanned.number, scanned.hash
    return cursor


@transaction.atomic
def _advance(cursor: ChainCursor, number: int, block_hash: str) -> None:
    cursor.block_number, cursor.block_hash = number, block_hash
    cursor.save()
    ScannedBlock.objects.update_or_create(
        network=cursor.network, number=number, defaults={"hash": block_hash}
    )
    stale = ScannedBlock.objects.filter(network=cursor.network).order_by("-number")[
        SCANNED_BLOCKS_KEPT:
    ]
    ScannedBlock.objects.filter(pk__in=[s.pk for s in stale]).delete()
