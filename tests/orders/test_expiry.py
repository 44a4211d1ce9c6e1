from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from allies.models import AllyPenalty
from allies.selectors import is_ally_penalized
from audit.models import Action, Log
from escrow.models import Transfer
from orders.errors import AllyNotEligible
from orders.models import OPEN_STATUSES, Order, OrderStatus
from orders.services import order_expire, order_take, orders_expire_due
from tests.factories import (
    expire_timer,
    make_order,
    make_paid_order,
    make_taken_order,
)

pytestmark = [pytest.mark.django_db, pytest.mark.money]


def test_an_unpaid_order_expires_when_its_timer_runs_out():
    order = make_order()
    expire_timer(order)

    expired = order_expire(order_id=order.pk)

    assert expired.status == OrderStatus.EXPIRED and expired.expires_at is None
    assert not Transfer.objects.exists() and not AllyPenalty.objects.exists()
    log = Log.objects.get(order=order, action=Action.ORDER_EXPIRED)
    assert (
        log.metadata == {"from": "PENDING_PAYMENT", "reason": "timeout"}
        and log.actor_wallet is None
    )


def test_an_order_whose_timer_has_not_run_out_is_left_alone():
    order = make_paid_order()
    assert order_expire(order_id=order.pk).status == OrderStatus.AVAILABLE


def test_a_paid_order_nobody_took_expires_with_a_refund():
    order = make_paid_order()
    expire_timer(order)

    order_expire(order_id=order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    refund = Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)
    assert refund.recipient == order.user.wallet_address
    assert not AllyPenalty.objects.exists()


def test_a_taken_order_without_receipt_expires_penalizes_the_ally_and_refunds():
    order = make_taken_order()
    ally = order.ally
    expire_timer(order)

    order_expire(order_id=order.pk)
    order_expire(order_id=order.pk)  # a second sweep changes nothing

    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert Transfer.objects.filter(order=order, purpose=Transfer.Purpose.REFUND).count() == 1
    penalty = AllyPenalty.objects.get(ally=ally)
    assert penalty.reason == AllyPenalty.Reason.TIMEOUT and penalty.penalty_minutes == 30
    left = penalty.penalty_until - timezone.now()
    assert timedelta(minutes=29) < left <= timedelta(minutes=30)
    assert Log.objects.filter(order=order, action=Action.ALLY_PENALIZED).count() == 1


def test_a_penalized_ally_can_take_again_once_the_penalty_ends():
    # given an ally penalized for letting an order expire
    stalled = make_taken_order()
    ally = stalled.ally
    expire_timer(stalled)
    order_expire(order_id=stalled.pk)
    fresh = make_paid_order()

    # when the penalty is still running, then the ally cannot take
    with pytest.raises(AllyNotEligible, match="penalized"):
        order_take(order_id=fresh.pk, ally=ally)

    # when the penalty has ended, then the ally can
    AllyPenalty.objects.filter(ally=ally).update(
        penalty_until=timezone.now() - timedelta(seconds=1)
    )
    assert not is_ally_penalized(ally=ally)
    assert order_take(order_id=fresh.pk, ally=ally).status == OrderStatus.TAKEN


def test_the_sweep_expires_every_due_order_in_batches_and_only_those():
    due = [make_order(), make_paid_order(), make_taken_order(), make_order()]
    for order in due:
        expire_timer(order)
    waiting = make_paid_order()

    assert orders_expire_due(batch_size=3) == 4

    assert set(Order.objects.filter(status=OrderStatus.EXPIRED).values_list("pk", flat=True)) == {
        o.pk for o in due
    }
    waiting.refresh_from_db()
    assert waiting.status == OrderStatus.AVAILABLE
    assert orders_expire_due() == 0


def test_a_sweep_with_nothing_due_is_one_query(django_assert_num_queries):
    make_paid_order()
    with django_assert_num_queries(1):
        assert orders_expire_due() == 0


def test_the_due_orders_query_reads_only_open_orders():
    # given a history of finished orders the planner has statistics for, and one order due
    due = make_order()
    expire_timer(due)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
        )
        copied = [c for (c,) in cursor.fetchall() if c not in ("id", "status", "expires_at")]
        columns = ", ".join(copied)
        cursor.execute(
            f"INSERT INTO orders (id, status, expires_at, {columns}) "
            f"SELECT gen_random_uuid(), 'EXPIRED', NULL, {columns} "
            "FROM orders, generate_series(1, 5000) WHERE orders.id = %s",
            [due.pk],
        )
        cursor.execute("ANALYZE orders")

    # the sweep's query reads only open orders, through a partial index: the one on their
    # timers, or (the planner's tie with a single open order) the one on their payers
    query = (
        Order.objects.filter(status__in=OPEN_STATUSES, expires_at__lte=timezone.now())
        .order_by("expires_at")
        .values_list("pk", "ally_id")[:1000]
    )
    with connection.cursor() as cursor:
        sql, params = query.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert "idx_orders_timeout" in plan or "orders_one_open_per_user" in plan, plan


def test_one_order_that_cannot_expire_does_not_stop_the_sweep():
    # given a paid order whose escrow row is missing (corrupted by hand) and a healthy one
    from escrow.models import EscrowAccount

    broken, healthy = make_paid_order(), make_order()
    EscrowAccount.objects.filter(order=broken).delete()
    expire_timer(broken)
    expire_timer(healthy)

    # when the sweep runs, then the healthy order still expires
    assert orders_expire_due() == 1
    healthy.refresh_from_db()
    broken.refresh_from_db()
    assert healthy.status == OrderStatus.EXPIRED and broken.status == OrderStatus.AVAILABLE


@pytest.mark.slow  # a backlog of orders
def test_a_backlog_expires_in_batches_with_every_guarantee_of_one_by_one(
    django_capture_on_commit_callbacks, monkeypatch
):
    from escrow import transfers
    from escrow.models import Transfer

    told = []
    monkeypatch.setattr(transfers, "_enqueue", lambda ids, **queue: told.append(list(ids)))
    unpaid = [make_order() for _ in range(20)]
    paid = [make_paid_order() for _ in range(20)]
    taken = [make_taken_order() for _ in range(20)]
    for order in unpaid + paid + taken:
        expire_timer(order)

    with django_capture_on_commit_callbacks(execute=True):
        expired = orders_expire_due(batch_size=25)

    assert expired == 60
    assert Order.objects.filter(status=OrderStatus.EXPIRED).count() == 60
    refunded = {o.pk for o in paid + taken}
    assert (
        set(Transfer.objects.filter(purpose="REFUND").values_list("order_id", flat=True))
        == refunded
    )
    assert AllyPenalty.objects.filter(reason="TIMEOUT").count() == 20
    assert Log.objects.filter(action=Action.ORDER_EXPIRED).count() == 60
    assert Log.objects.filter(action=Action.ALLY_PENALIZED).count() == 20
    statuses = Log.objects.filter(action=Action.STATUS_CHANGED, metadata__new_status="EXPIRED")
    assert statuses.count() == 60
    assert sum(len(ids) for ids in told) == 40 and len(told) <= 3  # one message per batch

    # and a second sweep finds nothing more to do
    with django_capture_on_commit_callbacks(execute=True):
        assert orders_expire_due(batch_size=25) == 0
    assert Transfer.objects.filter(purpose="REFUND").count() == 40
    assert AllyPenalty.objects.count() == 20


def test_one_bad_order_does_not_hold_back_the_rest_of_its_batch(monkeypatch):
    from orders import services

    good, bad = make_paid_order(), make_paid_order()
    for order in (good, bad):
        expire_timer(order)
    real = services.refunds_create

    def refuse_the_bad_one(*, payers):
        if bad.pk in payers:
            raise RuntimeError("its network is not configured")
        return real(payers=payers)

    monkeypatch.setattr(services, "refunds_create", refuse_the_bad_one)

    assert orders_expire_due() == 1
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == OrderStatus.EXPIRED and bad.status == OrderStatus.AVAILABLE
