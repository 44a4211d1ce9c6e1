import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from allies.selectors import is_ally_penalized
from orders.board import Queue, ally_dashboard, available_orders, get_ally_stats, waiting_queue
from orders.models import Order
from orders.selectors import admin_metrics, user_order_summary
from orders.services import (
    order_cancel,
    order_complete,
    order_expire,
    order_mark_paid,
    order_take,
    orders_expire_due,
)
from quotes.selectors import get_current_rate
from tests.factories import (
    expire_timer,
    make_ally,
    make_order,
    make_paid_order,
    make_quote,
    make_taken_order,
    make_user,
    png_upload,
    tx_hash,
)

pytestmark = pytest.mark.django_db


def test_the_board_shows_available_orders_in_the_allys_currency_oldest_first(
    django_assert_num_queries,
):
    # given orders in several states and currencies
    first, second = make_paid_order(fiat="BOB"), make_paid_order(fiat="BOB")
    make_paid_order(fiat="MXN")
    make_order(fiat="BOB")
    make_taken_order(fiat="BOB")
    late = make_paid_order(fiat="BOB")
    expire_timer(late)
    for _ in range(5):
        make_paid_order(fiat="BOB")
    ally = make_ally(country="BO")

    # when the board is read, then it is one query whatever its length
    with django_assert_num_queries(1):
        board = list(available_orders(ally=ally))

    assert board[:2] == [first, second] and len(board) == 7
    assert all(o.fiat_currency == "BOB" and o.status == "AVAILABLE" for o in board)
    assert late not in board


def test_the_board_queue_is_read_once_and_renewed_when_an_order_joins_or_leaves(
    django_assert_num_queries,
):
    # given a Bolivian board read once
    first = make_paid_order(fiat="BOB")
    bolivian, other = make_ally(country="BO"), make_ally(country="BO")
    assert waiting_queue(ally=bolivian, size=20) == Queue(orders=[first], total=1)

    # then every ally of the country reads it from the cache, whatever changes elsewhere
    make_paid_order(fiat="MXN")
    make_order(fiat="BOB")
    with django_assert_num_queries(0):
        assert waiting_queue(ally=other, size=20).total == 1

    # an order paid joins it, a taken one leaves it, an expired one too
    second = make_paid_order(fiat="BOB")
    assert waiting_queue(ally=other, size=20).orders == [first, second]
    order_take(order_id=first.pk, ally=make_ally(country="BO"))
    assert waiting_queue(ally=other, size=20).orders == [second]
    expire_timer(second)
    orders_expire_due()
    with django_assert_num_queries(1):
        assert waiting_queue(ally=other, size=20) == Queue(orders=[], total=0)


@pytest.mark.slow  # waits for an order to run out
def test_the_board_queue_lapses_when_its_first_order_runs_out():
    make_paid_order(fiat="BOB")
    Order.objects.update(expires_at=timezone.now() + timedelta(seconds=1))
    ally = make_ally(country="BO")
    assert waiting_queue(ally=ally, size=20).total == 1

    time.sleep(2.1)  # nothing commits: the timer alone takes it off the board

    assert waiting_queue(ally=ally, size=20).total == 0


@pytest.mark.django_db(transaction=True)
def test_a_queue_read_before_a_change_commits_is_not_kept():
    # given an order being paid, not yet committed
    order = make_order(fiat="BOB")
    ally = make_ally(country="BO")
    with transaction.atomic():
        order_mark_paid(
            order_id=order.pk, deposit_tx_hash=tx_hash(), amount_received=order.amount_crypto
        )

        # when another request reads (and caches) the board from the rows before the commit
        seen = []
        reader = threading.Thread(
            target=lambda: (seen.append(waiting_queue(ally=ally, size=20)), connection.close())
        )
        reader.start()
        reader.join()
        assert seen[0].total == 0

    # then the commit drops that queue: the next read shows the order
    assert waiting_queue(ally=ally, size=20).orders == [order]


def test_the_board_does_not_carry_the_qr():
    make_paid_order()
    order = available_orders(ally=make_ally()).get()
    assert "qr_data" in order.get_deferred_fields()


def test_a_users_history_has_status_text_and_seconds_left(django_assert_num_queries):
    user = make_user()
    old = make_order(user=user)
    order_cancel(order_id=old.pk, user=user)
    current = make_order(user=user)
    make_order()  # someone else's

    with django_assert_num_queries(1):
        history = [
            (o.pk, o.get_status_display(), o.seconds_remaining)
            for o in user_order_summary(user=user)
        ]

    assert [pk for pk, _, _ in history] == [current.pk, old.pk]
    assert history[0][1] == "Waiting for your payment" and 170 < history[0][2] <= 180
    assert history[1][1] == "Expired" and history[1][2] is None


def test_seconds_left_never_goes_below_zero():
    order = make_order()
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert user_order_summary(user=order.user).get().seconds_remaining == 0


def test_ally_stats_and_dashboard(django_assert_max_num_queries):
    ally = make_ally()
    for _ in range(2):
        order = make_taken_order(ally=ally)
        order_complete(order_id=order.pk, ally=ally, proof=png_upload())
    stalled = make_taken_order(ally=ally)
    expire_timer(stalled)
    order_expire(order_id=stalled.pk)

    with django_assert_max_num_queries(3):
        stats = get_ally_stats(ally=ally)
    # the stats, the daily chart, the standing (penalty, order in hand, a dispute to answer,
    # the switch and the working hours)
    with django_assert_max_num_queries(9):
        dashboard = ally_dashboard(ally=ally)

    payout = Order.objects.filter(ally=ally, status="COMPLETED").first().payout_crypto
    assert (stats.total_orders, stats.completed_orders, stats.expired_orders) == (3, 2, 1)
    assert stats.completed_today == 2 and stats.penalties == 1
    assert stats.earned == {"USDT": payout * 2}
    assert stats.avg_completion_minutes == Decimal("0.0")
    assert dashboard.penalty is not None and dashboard.active_order is None
    assert is_ally_penalized(ally=ally)


def test_admin_metrics_for_today(django_assert_max_num_queries):
    done = make_taken_order(amount_fiat="100.00")
    order_complete(order_id=done.pk, ally=done.ally, proof=png_upload())
    make_taken_order()
    for order in (make_order(), make_paid_order()):
        expire_timer(order)
        order_expire(order_id=order.pk)
    cancelled = make_order()
    order_cancel(order_id=cancelled.pk, user=cancelled.user)

    with django_assert_max_num_queries(4):
        metrics = admin_metrics()

    assert metrics.orders_today == 5
    assert (metrics.completed_today, metrics.expired_today) == (1, 3)
    assert metrics.volume_today == {"BOB": Decimal("100.00")}
    assert metrics.success_rate == Decimal("25.0")
    assert metrics.active_allies == 1
    assert metrics.timeouts_by_state == {"PENDING_PAYMENT": 1, "AVAILABLE": 1}


def test_the_current_rate_is_the_active_quote():
    make_quote(rate="9.70")
    latest = make_quote(rate="9.80")
    assert get_current_rate(token="USDT", fiat="BOB") == latest
    assert get_current_rate(token="ETH", fiat="ARS") is None
