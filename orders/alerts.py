"""What Kibo tells payers and allies of their orders while Kibo is closed (kibo.notices).

Each function composes one notice, in every language, and hands it to `notify` inside the
caller's transaction: it goes out when the change commits. A payer hears only if they
subscribed a device (the order page offers it); an ally from every device and chat linked.
"""

from datetime import timedelta

from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kibo.formats import crypto_text, fiat_text
from kibo.notices import compose, notify
from orders.models import Dispute, Order, OrderStatus


def _fiat(order: Order) -> str:
    return f"{fiat_text(order.amount_fiat)} {order.fiat_currency}"


def _payer_page(order: Order) -> str:
    return reverse("orders:detail", kwargs={"order_id": order.pk})


def _ally_page(order: Order) -> str:
    return reverse("allies:work", kwargs={"order_id": order.pk})


def _tell(user_id, kind: str, text, *, url: str, tag: str, **details) -> None:
    notify(user_ids=[user_id], notice=compose(kind, text, url=url, tag=tag, **details))


# --- to the payer ---------------------------------------------------------------------

# What a payer hears of their order, by kind: title and body, the body's figures filled in.
PAYER_NOTICES = {
    "order-taken": (
        gettext_lazy("An ally took your order"),
        gettext_lazy("They are paying your QR of %(amount)s now."),
    ),
    "order-paid": (
        gettext_lazy("Your QR is paid"),
        gettext_lazy("The ally sent the bank receipt for %(amount)s."),
    ),
    "order-refunded": (
        gettext_lazy("Your money is back"),
        gettext_lazy("%(paid)s %(token)s went back to your wallet."),
    ),
}


def payer_told(order: Order, kind: str) -> None:
    """Tell the order's payer (a kind of PAYER_NOTICES), on the devices they subscribed."""
    title, body = PAYER_NOTICES[kind]
    _tell(
        order.user_id,
        kind,
        lambda: (
            str(title),
            body
            % {
                "amount": _fiat(order),
                "paid": crypto_text(order.amount_crypto),
                "token": order.crypto_token,
            },
        ),
        url=_payer_page(order),
        tag=f"order:{order.pk}",
    )


# --- to the ally ----------------------------------------------------------------------

RECEIPT_WARNING_SECONDS = 60


def receipts_due_warn() -> int:
    """Tell each ally whose receipt time has a minute or less left, once per order (beat,
    every few seconds). Returns how many were told."""
    now = timezone.now()
    due = Order.objects.filter(
        status=OrderStatus.TAKEN,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(seconds=RECEIPT_WARNING_SECONDS),
    ).only("pk", "ally_id", "amount_fiat", "fiat_currency", "expires_at")
    told = 0
    for order in due:
        if cache.add(f"receipt-due:{order.pk}", 1, timeout=RECEIPT_WARNING_SECONDS * 5):
            ally_receipt_due(order)
            told += 1
    return told


def ally_receipt_due(order: Order) -> None:
    _tell(
        order.ally_id,
        "receipt-due",
        lambda: (
            _("One minute left"),
            _("Upload the receipt for %(amount)s, or the order runs out and you are penalized.")
            % {"amount": _fiat(order)},
        ),
        url=_ally_page(order),
        tag=f"order:{order.pk}",
        ttl=RECEIPT_WARNING_SECONDS,
        urgency="high",
    )


def ally_disputed(order: Order) -> None:
    _tell(
        order.ally_id,
        "disputed",
        lambda: (
            _("A payer disputes an order"),
            _("They say the shop was not paid %(amount)s. Give your side.")
            % {"amount": _fiat(order)},
        ),
        url=_ally_page(order),
        tag=f"dispute:{order.pk}",
        urgency="high",
    )


def ally_dispute_decided(dispute: Dispute, order: Order) -> None:
    """Staff decided the payer's dispute about the ally's order, or the ally's own."""
    upheld = dispute.status == Dispute.Status.UPHELD

    def text() -> tuple[str, str]:
        amount = {"amount": _fiat(order)}
        if dispute.kind == Dispute.Kind.PENALTY:
            return _("Our staff decided your appeal"), (
                _("Your penalty is lifted: you can take orders again.")
                if upheld
                else _("Your penalty stands. Read our note on the order.")
            )
        return _("Our staff decided the dispute"), (
            _("The payer was right about %(amount)s: the payout is cancelled.") % amount
            if upheld
            else _("You were right about %(amount)s: your payout goes out.") % amount
        )

    _tell(order.ally_id, "dispute-decided", text, url=_ally_page(order), tag=f"dispute:{order.pk}")


def ally_payout_confirmed(order: Order) -> None:
    _tell(
        order.ally_id,
        "payout-confirmed",
        lambda: (
            _("You were paid"),
            _("%(payout)s %(token)s reached your wallet for the order of %(amount)s.")
            % {
                "payout": crypto_text(order.payout_crypto),
                "token": order.crypto_token,
                "amount": _fiat(order),
            },
        ),
        url=_ally_page(order),
        tag=f"payout:{order.pk}",
    )
