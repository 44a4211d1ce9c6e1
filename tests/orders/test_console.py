"""The staff console: its figures against hand-computed days, beat's rollup, what is going on
now, the escrow's last reconciliation, and the page's cost."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from allies.models import AllyPenalty
from allies.presence import ally_switch, presence_sample
from devtools.localchain import mint_local
from escrow.models import EscrowSnapshot
from escrow.selectors import escrow_address
from escrow.services import escrow_snapshot_take
from kibo.templatetags.kibo_format import minutes_seconds
from orders.calls import order_call_allies
from orders.disputes import dispute_open
from orders.models import DailyStats, Dispute, Order
from orders.selectors import TOTAL, console_history, console_now, day_figures
from orders.services import daily_stats_rollup, order_expire
from tests.factories import (
    expire_timer,
    make_ally,
    make_completed_order,
    make_order,
    make_paid_order,
    make_quote,
    make_taken_order,
)
from tests.helpers.chain import token

pytestmark = [pytest.mark.slow, pytest.mark.django_db]  # days of orders and a rollup


def a_day_of_orders():
    """Bolivia: 100.00 and 50.00 BOB paid (1 and 3 minutes from payment to receipt), one
    order nobody took in time, one waiting for its payment. Mexico: 400.00 MXN paid."""
    make_quote(token="USDT", fiat="BOB", rate="10.00")
    make_quote(token="USDC", fiat="BOB", rate="10.00")
    make_quote(token="USDT", fiat="MXN", rate="20.00")
    paid = [
        make_completed_order(amount_fiat="100.00"),
        make_completed_order(amount_fiat="50.00", token="USDC"),
        make_completed_order(amount_fiat="400.00", fiat="MXN", ally=make_ally(country="MX")),
    ]
    for order, seconds in zip(paid, (60, 180, 600), strict=True):
        Order.objects.filter(pk=order.pk).update(
            completed_at=order.paid_at + timedelta(seconds=seconds)
        )
    untaken = make_paid_order(amount_fiat="20.00")
    expire_timer(untaken)
    order_expire(order_id=untaken.pk)
    make_order(amount_fiat="30.00")
    return paid


def test_a_days_figures_are_the_hand_computed_ones():
    paid = a_day_of_orders()

    figures = day_figures(day=timezone.localdate())

    bob, mxn, total = figures["BOB"], figures["MXN"], figures[TOTAL]
    assert bob.orders == 4 and bob.completed == 2 and bob.failed == 1
    assert bob.by_status == {"COMPLETED": 2, "EXPIRED": 1, "PENDING_PAYMENT": 1}
    assert bob.success_rate == Decimal("66.7")
    assert minutes_seconds(bob.median_paid_to_completed) == "2 min 0 s"
    assert bob.volume_fiat == Decimal("150.00")
    assert bob.volume_crypto == {"USDT": paid[0].amount_crypto, "USDC": paid[1].amount_crypto}
    assert bob.median_paid_to_completed == timedelta(seconds=120)
    assert bob.timeouts == {"AVAILABLE": 1}
    assert bob.active_allies == 2 and mxn.active_allies == 1 and total.active_allies == 3
    assert mxn.orders == 1 and mxn.success_rate == Decimal("100.0")
    assert mxn.median_paid_to_completed == timedelta(seconds=600)
    assert figures["ARS"].orders == 0 and figures["ARS"].success_rate is None
    assert total.orders == 5 and total.completed == 3 and total.failed == 1
    assert total.success_rate == Decimal("75.0")
    assert total.median_paid_to_completed == timedelta(seconds=180)
    assert total.volume_crypto["USDT"] == paid[0].amount_crypto + paid[2].amount_crypto
    assert total.stablecoin_volume == sum(o.amount_crypto for o in paid)


def test_beat_rolls_up_finished_days_once_and_the_history_reads_them():
    # given the orders of two days ago and yesterday
    a_day_of_orders()
    now = timezone.now()
    Order.objects.filter(fiat_currency="MXN").update(created_at=now - timedelta(days=2))
    Order.objects.filter(fiat_currency="BOB").update(created_at=now - timedelta(days=1))
    yesterday = timezone.localdate() - timedelta(days=1)

    # when beat rolls up, twice
    written = daily_stats_rollup()
    daily_stats_rollup()

    # then the thirty finished days are there, once each, with yesterday's figures
    assert written == 30
    assert DailyStats.objects.count() == 30 * 3
    row = DailyStats.objects.get(day=yesterday, fiat_currency="BOB")
    assert (row.orders, row.completed, row.failed) == (4, 2, 1)
    assert row.volume_fiat == Decimal("150.00") and row.timeouts == {"AVAILABLE": 1}
    assert row.median_paid_to_completed == timedelta(seconds=120)
    assert row.active_allies == 2
    # and the console's thirty days end with today, live, after the rolled-up days
    today = day_figures(day=timezone.localdate())
    history = console_history(fiat=TOTAL, today=today[TOTAL])
    assert len(history) == 30 and history[-1].day == timezone.localdate()
    assert [d.orders for d in history[-3:]] == [1, 4, 0]
    assert history[-2].success_rate == Decimal("66.7")
    # later runs redo only the last two days
    assert daily_stats_rollup() == 2


def test_what_is_going_on_now(admin_user):
    # an order being paid by its ally; a penalized ally; held, frozen and overdue payouts
    make_taken_order()
    AllyPenalty.objects.create(
        ally=make_ally(),
        reason="NO_PAYMENT",
        penalty_minutes=30,
        penalty_until=timezone.now() + timedelta(minutes=30),
    )
    make_completed_order()
    disputed, overdue = make_completed_order(), make_completed_order()
    for order in (disputed, overdue):
        dispute_open(order_id=order.pk, user=order.user, statement="Not paid.")
    Dispute.objects.filter(order=overdue).update(opened_at=timezone.now() - timedelta(hours=25))

    now = console_now()

    bob = now["BOB"]
    assert (bob.working_allies, bob.penalized_allies) == (1, 1)
    assert (bob.open_disputes, bob.overdue_disputes) == (2, 1)
    assert bob.oldest_dispute_at == Dispute.objects.get(order=overdue).opened_at
    assert (bob.held_releases, bob.frozen_releases) == (1, 2)
    assert now[TOTAL].open_disputes == 2 and now["MXN"].open_disputes == 0


def staff_client(admin_user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


def test_the_console_is_for_staff_and_refreshes_its_figures(admin_user):
    a_day_of_orders()

    page = staff_client(admin_user).get("/admin/dashboard/?country=BO").content.decode()
    part = (
        staff_client(admin_user)
        .get("/admin/dashboard/?country=BO", HTTP_HX_REQUEST="true")
        .content.decode()
    )

    assert '<td data-figure="orders">4</td>' in page and "66.7 %" in page
    assert 'hx-trigger="every 30s"' in page and page.count('<svg class="chart"') == 3
    assert part.startswith('<div id="figures"') and "<html" not in part
    restored = (  # htmx going back to a tab whose page it did not keep
        staff_client(admin_user)
        .get(
            "/admin/dashboard/?country=BO",
            HTTP_HX_REQUEST="true",
            HTTP_HX_HISTORY_RESTORE_REQUEST="true",
        )
        .content.decode()
    )
    assert "<html" in restored and '<td data-figure="orders">4</td>' in restored
    assert (
        '<td data-figure="orders">5</td>'
        in staff_client(admin_user).get("/admin/dashboard/").content.decode()
    )
    for outsider in (make_ally(), None):
        client = Client()
        if outsider:
            client.force_login(outsider)
        response = client.get("/admin/dashboard/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.slow  # fills a busy day
def test_the_console_costs_the_same_few_queries_however_busy(
    admin_user, django_assert_max_num_queries
):
    a_day_of_orders()
    for _ in range(10):
        make_completed_order()
    daily_stats_rollup()
    client = staff_client(admin_user)
    client.get("/admin/dashboard/")  # the session and the config are read once cached

    # ... and the allies online now, through the day, and the orders nobody was there for
    with django_assert_max_num_queries(15):
        response = client.get("/admin/dashboard/")

    assert response.status_code == 200


def test_an_escrow_mismatch_is_marked_red(admin_user):
    EscrowSnapshot.objects.create(
        network="local",
        token="USDT",
        decimals=6,
        block=10,
        on_chain=1_000_000,
        expected=1_500_000,
        locked=1_500_000,
        ok=False,
        taken_at=timezone.now(),
    )

    page = staff_client(admin_user).get("/admin/dashboard/").content.decode()

    assert 'class="mismatch" data-escrow="local-USDT"' in page
    assert "MISMATCH" in page and "-0.50 USDT" in page


@pytest.mark.usefixtures("chain")
def test_beat_reconciles_the_escrow_on_chain_for_the_console():
    # given books that match the chain, beat's snapshot says so, once per token
    escrow_snapshot_take()
    escrow_snapshot_take()
    lines = {(s.network, s.token): s for s in EscrowSnapshot.objects.all()}
    assert set(lines) == {("local", "USDT"), ("local", "USDC"), ("local", "ETH")}
    assert all(line.ok for line in lines.values())

    # when money the records do not explain reaches the escrow, the next snapshot marks it
    mint_local(
        os.environ["KIBO_RPC_URL_LOCAL"],
        token_address=token("USDC").address,
        to=escrow_address(),
        amount_base=1,
    )
    escrow_snapshot_take()
    usdc = EscrowSnapshot.objects.get(network="local", token="USDC")
    assert not usdc.ok and usdc.difference == 1


def test_the_console_day_is_kibos_whatever_zone_the_staff_member_is_in():
    from zoneinfo import ZoneInfo

    from orders.selectors import business_today, local_day_bounds

    kibo = timezone.get_default_timezone()
    with timezone.override(ZoneInfo("Pacific/Kiritimati")):  # UTC+14: another date, mostly
        assert business_today() == timezone.localdate(timezone=kibo)
        start, end = local_day_bounds(business_today())
    assert timezone.localtime(start, kibo).hour == 0 and end - start == timedelta(days=1)


def test_a_dispute_decided_days_later_is_rolled_up_again(admin_user):
    from orders.disputes import dispute_decide
    from orders.services import order_refund_record
    from tests.factories import tx_hash

    # given an order completed and disputed five days ago, and the days rolled up since
    order = make_completed_order()
    dispute = dispute_open(order_id=order.pk, user=order.user, statement="Not paid.")
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=5))
    daily_stats_rollup()
    day = timezone.localtime(timezone.now() - timedelta(days=5)).date()
    assert DailyStats.objects.get(day=day, fiat_currency="BOB").completed == 1

    # when staff uphold it today and the payer's refund is confirmed
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="Not paid.")
    order_refund_record(order_id=order.pk, tx_hash=tx_hash())

    # then the next rollup redoes that day
    daily_stats_rollup()
    row = DailyStats.objects.get(day=day, fiat_currency="BOB")
    assert (row.completed, row.failed) == (0, 1)


def test_the_console_shows_who_is_online_and_the_orders_nobody_was_there_for(admin_user):
    # given an online ally in Bolivia, counted by beat, and an order that ran out in Mexico
    # with no ally there
    ally_switch(ally=make_ally(country="BO"), online=True)
    presence_sample()
    unattended = make_paid_order(fiat="MXN", amount_fiat="200.00")
    order_call_allies(order_id=unattended.pk)
    expire_timer(unattended)
    order_expire(order_id=unattended.pk)

    bolivia = staff_client(admin_user).get("/admin/dashboard/?country=BO").content.decode()
    mexico = staff_client(admin_user).get("/admin/dashboard/?country=MX").content.decode()
    everywhere = staff_client(admin_user).get("/admin/dashboard/").content.decode()

    assert '<td data-figure="online">1</td>' in bolivia
    assert '<td data-figure="unattended">0</td>' in bolivia
    assert '<td data-figure="online">0</td>' in mexico
    assert '<td data-figure="unattended">1</td>' in mexico
    assert '<td data-figure="online">1</td>' in everywhere
    assert "data-presence-hours" in bolivia and "<td>1</td>" in bolivia
