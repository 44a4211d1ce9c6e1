"""The database itself refuses what the domain forbids, whatever code writes to it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from allies.models import AllyPenalty
from escrow.models import EscrowAccount
from kibo.models import User
from orders.models import Order
from quotes.models import Quote
from tests.factories import make_ally, make_order, make_paid_order, make_quote, make_user

pytestmark = pytest.mark.django_db


def rejected(update):
    with pytest.raises(IntegrityError), transaction.atomic():
        update()


@pytest.mark.parametrize(
    "change",
    [
        {"amount_fiat": Decimal("-1")},
        {"amount_crypto": Decimal("0")},
        {"fee_crypto": Decimal("-0.1")},
        {"fee_crypto": Decimal("1000")},
        {"exchange_rate": Decimal("0")},
        {"status": "LOST"},
        {"fiat_currency": "EUR"},
        {"crypto_token": "DOGE"},
        {"status": "TAKEN"},  # without an ally
        {"status": "COMPLETED"},  # without an ally or completion time
        {"expires_at": None},  # an open order always has a timer
        {"deposit_tx_hash": "0xnothex"},
    ],
)
def test_orders_reject_impossible_values(change):
    order = make_order()
    rejected(lambda: Order.objects.filter(pk=order.pk).update(**change))


def test_a_user_cannot_hold_two_open_orders_even_behind_the_services_back():
    order = make_order()
    rejected(
        lambda: Order.objects.create(
            user=order.user,
            qr_data="x",
            amount_fiat=1,
            fiat_currency="BOB",
            amount_crypto=1,
            fee_crypto=0,
            crypto_token="USDT",
            network="local",
            exchange_rate=1,
            quote=order.quote,
            expires_at=timezone.now(),
        )
    )


def test_an_ally_cannot_hold_two_taken_orders():
    from tests.factories import make_taken_order

    first = make_taken_order()
    second = make_paid_order()
    rejected(
        lambda: Order.objects.filter(pk=second.pk).update(
            status="TAKEN", ally=first.ally, taken_at=timezone.now()
        )
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"wallet_address": "0x123"},
        {"wallet_address": "0x" + "z" * 40},
        {"role": "root"},
        {"country": "BR"},
        {"reputation": Decimal("5.01")},
        {"reputation": Decimal("-0.01")},
        {"role": "ally", "country": None},
    ],
)
def test_users_reject_impossible_values(fields):
    user = make_user()
    rejected(lambda: User.objects.filter(pk=user.pk).update(**fields))


def test_quotes_are_positive_and_one_active_per_pair():
    quote = make_quote()
    rejected(lambda: Quote.objects.filter(pk=quote.pk).update(rate=Decimal("-1")))
    rejected(
        lambda: Quote.objects.create(
            token="USDT", fiat="BOB", rate=1, source="x", timestamp=timezone.now(), is_active=True
        )
    )


def test_one_deposit_transaction_funds_one_escrow_account():
    paid = make_paid_order()
    other = make_order()
    rejected(
        lambda: EscrowAccount.objects.create(
            order=other,
            amount=1,
            token="USDT",
            network="local",
            deposit_tx_hash=paid.deposit_tx_hash,
        )
    )


def test_escrow_accounts_reject_impossible_values():
    order = make_paid_order()
    rejected(lambda: EscrowAccount.objects.filter(order=order).update(amount=0))
    rejected(lambda: EscrowAccount.objects.filter(order=order).update(status="SPENT"))


def test_penalties_need_a_known_reason_and_positive_minutes():
    ally = make_ally()
    until = timezone.now() + timedelta(minutes=5)
    rejected(
        lambda: AllyPenalty.objects.create(
            ally=ally, reason="LATE", penalty_minutes=5, penalty_until=until
        )
    )
    rejected(
        lambda: AllyPenalty.objects.create(
            ally=ally, reason="TIMEOUT", penalty_minutes=0, penalty_until=until
        )
    )


def test_the_foreign_keys_lean_on_the_composite_indexes_and_the_unique_ones_stay():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename IN ('orders', 'logs')")
        names = {row[0] for row in cursor.fetchall()}
    assert {"orders_one_open_per_user", "orders_one_taken_per_ally"} <= names
    assert {"idx_orders_user", "idx_orders_ally", "idx_logs_order"} <= names
    assert (
        not {"orders_user_id_7e2523fb", "orders_ally_id_153854d0", "logs_order_id_48da791d"} & names
    )
