"""Calling allies to an order: when it reaches the board, every online ally of its country
who may take it now is told at once (kibo.notices: Web Push, Telegram), by a task queued on
the commit that put it there (orders.tasks.call_allies), never in the payer's request.

An order's call (OrderCall) remembers whom it told until the order leaves the board. Taken,
it is answered: the taker's streak of orders let run out starts again. Run out untaken, it
counts against each told ally still online; MISSED_IN_ROW_MAX in a row switch the ally off
(allies.presence). It also keeps how many allies were online, so staff see the orders that
ran out because nobody was there.
"""

import logging
from collections import Counter
from datetime import datetime

from celery import current_app
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from allies.models import AllyPenalty
from allies.presence import (
    allies_online,
    allies_online_counts,
    presence_missed,
    presence_took_order,
)
from kibo.formats import crypto_text, fiat_text
from kibo.models import BlockedWallet, User
from kibo.notices import compose, notify
from orders.locks import lock_order
from orders.models import Order, OrderCall, OrderStatus
from quotes.models import FIAT_COUNTRY

logger = logging.getLogger(__name__)


def allies_to_call(*, fiat_currency: str, now: datetime) -> QuerySet[User]:
    """The online allies of the currency's country who may take an order now: not
    penalized, not holding an order, not blocked (orders.services._ensure_ally_may_take's
    rule for one ally, as one query for all)."""
    return (
        allies_online(country=FIAT_COUNTRY[fiat_currency], now=now)
        .exclude(Exists(AllyPenalty.objects.filter(ally=OuterRef("pk"), penalty_until__gt=now)))
        .exclude(Exists(Order.objects.filter(ally=OuterRef("pk"), status=OrderStatus.TAKEN)))
        .exclude(
            Exists(
                BlockedWallet.objects.filter(
                    wallet_address=OuterRef("wallet_address"), unblocked_at__isnull=True
                )
            )
        )
    )


def _available_notice(order: Order, *, now: datetime):
    left = max(0, int((order.expires_at - now).total_seconds()))

    def text() -> tuple[str, str]:
        amount = f"{fiat_text(order.amount_fiat)} {order.fiat_currency}"
        payout = f"{crypto_text(order.payout_crypto)} {order.crypto_token}"
        return (
            _("New order: %(amount)s") % {"amount": amount},
            _("You receive %(payout)s. %(minutes)d:%(seconds)02d left to take it.")
            % {"payout": payout, "minutes": left // 60, "seconds": left % 60},
        )

    return compose(
        "order-available",
        text,
        url=reverse("allies:board"),
        tag=f"order:{order.pk}",
        ttl=left,
        urgency="high",
    )


CALL_TASK = "orders.tasks.call_allies"


def call_allies_on_commit(order: Order) -> None:
    """Once the order's arrival on the board commits, queue the call to its allies."""
    order_id = str(order.pk)
    transaction.on_commit(lambda: current_app.send_task(CALL_TASK, args=[order_id]))


@transaction.atomic
def order_call_allies(*, order_id) -> OrderCall | None:
    """Tell the allies who may take the order that it waits (once: a task delivered twice
    finds its call made). Nothing for an order that left the board meanwhile."""
    order = lock_order(order_id)  # a take waits, so it answers a call that exists
    now = timezone.now()
    if order.status != OrderStatus.AVAILABLE or order.timer_ran_out(now):
        return None
    if OrderCall.objects.filter(order=order).exists():
        return None
    told = list(
        allies_to_call(fiat_currency=order.fiat_currency, now=now).values_list("pk", flat=True)
    )
    country = FIAT_COUNTRY[order.fiat_currency]
    online = allies_online_counts(countries=[country], now=now)[country]
    call = OrderCall.objects.create(
        order=order, called_at=now, online=online, told=told, told_count=len(told)
    )
    notify(user_ids=told, notice=_available_notice(order, now=now))
    logger.info(
        "called %d of %d online allies", len(told), online, extra={"order_id": str(order.pk)}
    )
    return call


def call_answered(*, order: Order, ally_id) -> None:
    """The order was taken (in the caller's transaction): its call is over, and the taker's
    streak of orders let run out starts again."""
    OrderCall.objects.filter(order=order).update(told=[])
    presence_took_order(ally_id=ally_id)


def calls_unanswered(*, orders: list[Order], ran_out: bool, now: datetime) -> None:
    """These orders left the board untaken (in the caller's transaction): when their time
    ran out (not a payer's cancel), each counts against the allies it told, and the call
    notes how many allies were online at the end. Allies who let too many run out in a
    row are switched off, and told so."""
    calls = list(
        OrderCall.objects.filter(order__in=orders).exclude(told=[]).values_list("order_id", "told")
    )
    if ran_out:
        told = Counter(ally for _order, allies in calls for ally in allies)
        # only against allies who could have taken them: not one busy with another order
        could = set()
        for currency in {order.fiat_currency for order in orders}:
            could |= set(
                allies_to_call(fiat_currency=currency, now=now)
                .filter(pk__in=list(told))
                .values_list("pk", flat=True)
            )
        told = Counter({ally: n for ally, n in told.items() if ally in could})
        for ally in presence_missed(told=told, now=now):
            notify(user_ids=[ally.pk], notice=switched_off_notice())
        currencies = {order.fiat_currency for order in orders}
        online = allies_online_counts(countries=[FIAT_COUNTRY[c] for c in currencies], now=now)
        for currency in currencies:
            OrderCall.objects.filter(
                order__in=[o for o in orders if o.fiat_currency == currency]
            ).update(online_at_end=online[FIAT_COUNTRY[currency]])
    if calls:
        OrderCall.objects.filter(order__in=[order_id for order_id, _told in calls]).update(told=[])


def switched_off_notice():
    return compose(
        "switched-off",
        lambda: (
            _("Kibo switched you off"),
            _(
                "Three orders in a row ran out without you taking them, so Kibo switched you "
                "off. Switch on again on the board when you are ready."
            ),
        ),
        url=reverse("allies:board"),
        tag="presence",
    )


def orders_unattended(*, fiat_currency: str | None, since: datetime) -> int:
    """Orders that ran out on the board since `since` with no ally online, neither when
    they arrived nor when their time ran out: in one currency, or in all (None)."""
    calls = OrderCall.objects.filter(called_at__gte=since, online=0, online_at_end=0)
    if fiat_currency is not None:
        calls = calls.filter(order__fiat_currency=fiat_currency)
    return calls.count()
