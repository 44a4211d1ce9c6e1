"""Paying an order: the payer reports the transaction that paid it (`deposit_verify`), and
the orders' side of every deposit escrow records (`OrderOutcomes`, which escrow calls
through escrow.outcomes: which order a deposit pays, and that a payout or refund was
confirmed on chain).
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.utils import translation
from django.utils.translation import gettext as _

from escrow import chain
from escrow.amounts import format_base_units, to_base_units
from escrow.deposits import deposit_record, token_of
from escrow.models import Deposit
from escrow.networks import TokenSpec, network_spec
from escrow.outcomes import DepositClaim
from escrow.selectors import escrow_address
from kibo.errors import DomainError
from kibo.selectors import is_wallet_blocked
from orders.locks import lock_order, lock_order_awaiting_payment
from orders.models import OPEN_STATUSES, Order, OrderStatus
from orders.services import order_mark_paid, order_refund_record, order_release_record


class DepositRejected(DomainError):
    """The reported transaction cannot pay the order; nothing was credited."""


@dataclass(frozen=True)
class DepositCheck:
    state: str  # "credited", "pending" or "returned"
    message: str


def why_not_creditable(
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


def deposit_claim(
    *, incoming: chain.IncomingTransfer, token: TokenSpec, order_hint: uuid.UUID | None
) -> DepositClaim:
    """Which order a deposit pays: the one its payer reported it for, or else the sender's
    order waiting for this token on this network; locked until escrow's transaction ends."""
    order: Order | None
    if order_hint is not None:
        order = lock_order(order_hint)
    else:
        order = lock_order_awaiting_payment(
            wallet=incoming.sender, network=incoming.network, token=token.symbol
        )
    with translation.override("en"):  # records and the audit trail are kept in English
        reason = why_not_creditable(
            order,
            sender=incoming.sender,
            network=incoming.network,
            token=token,
            amount_base=incoming.amount_base,
        )
    if order is None or reason is not None:
        return DepositClaim(order_id=order.pk if order else None, reason=reason or "")
    due = to_base_units(order.amount_crypto, token.decimals, round_up=True)
    return DepositClaim(order_id=order.pk, credited_base=due)


class OrderOutcomes:
    """The orders app's side of escrow.outcomes (connected in OrdersConfig.ready())."""

    def deposit_claim(
        self, *, incoming: chain.IncomingTransfer, token: TokenSpec, order_hint: uuid.UUID | None
    ) -> DepositClaim:
        return deposit_claim(incoming=incoming, token=token, order_hint=order_hint)

    def deposit_credited(
        self, *, order_id: uuid.UUID, tx_hash: str, amount_received: Decimal
    ) -> None:
        order_mark_paid(order_id=order_id, deposit_tx_hash=tx_hash, amount_received=amount_received)

    def release_confirmed(self, *, order_id: uuid.UUID, tx_hash: str) -> None:
        order_release_record(order_id=order_id, tx_hash=tx_hash)

    def refund_confirmed(self, *, order_id: uuid.UUID, tx_hash: str) -> None:
        order_refund_record(order_id=order_id, tx_hash=tx_hash)


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
    accepted = [t for t in incoming if token_of(spec, t) is not None]
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
    if mined.block_number > chain.final_block(network):
        if spec.finality != "depth":
            return DepositCheck(
                "pending", _("Payment seen; waiting for the network to finalize it.")
            )
        seen = chain.confirmations(network, mined.block_number)
        return DepositCheck(
            "pending",
            _("Payment seen; waiting for the network to confirm it (%(seen)s of %(needed)s).")
            % {"seen": seen, "needed": spec.confirmations},
        )

    recorded = [deposit_record(incoming=t, order_hint=order.pk) for t in accepted]
    deposits = [deposit for deposit in recorded if deposit is not None]
    if any(d.order_id == order.pk and d.outcome == Deposit.Outcome.CREDITED for d in deposits):
        message = _("Payment received. Looking for an ally to pay the QR.")
        if any(d.amount_base > d.credited_base for d in deposits):
            message += " " + _("The extra you sent is being returned to your wallet.")
        return DepositCheck("credited", message)
    order.refresh_from_db()
    reasons = "; ".join(
        why_not_creditable(
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
