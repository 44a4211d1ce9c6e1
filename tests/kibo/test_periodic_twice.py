"""Every periodic task stays safe when it runs twice at once: what happens while a dead
beat's last sends and its successor's first ones overlap, or a redelivered message meets
its first delivery. Each of beat's tasks runs in two threads at the same instant, each on
its own connection, on a world where every one of them has work to do."""

import logging
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from allies.models import AllyPenalty
from allies.presence import ally_switch
from audit.models import Action, Log
from escrow.models import Transfer
from orders.models import Order, OrderStatus
from tests.factories import expire_timer, make_ally, make_order, make_paid_order, make_taken_order
from tests.helpers.money import completed_order
from tests.helpers.threads import at_once

pytestmark = [pytest.mark.slow, pytest.mark.money]

SCHEDULED = sorted({entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()})


def twice_at_once(task_name: str) -> list[str]:
    """The task run twice at the same instant, each run on its own connection."""
    task = import_string(task_name)

    def run():
        task.apply(throw=True)

    return [f"{task_name}: {error!r}" for error in at_once(run, run)]


def world() -> list[Order]:
    """Work for each task: orders whose timers ran out unpaid, untaken and stalled by their
    ally, a completed order whose payout waits to be sent, yesterday's orders to roll up,
    allies online to sample."""
    unpaid, untaken, stalled = make_order(), make_paid_order(), make_taken_order()
    for order in (unpaid, untaken, stalled):
        expire_timer(order)
    paid_out, _ally, _release = completed_order()
    yesterday = timezone.now() - timedelta(days=1)
    Order.objects.filter(pk=paid_out.pk).update(completed_at=yesterday, created_at=yesterday)
    ally_switch(ally=make_ally(), online=True)
    return [unpaid, untaken, stalled, paid_out]


def story(order: Order) -> Counter:
    """Each step of the order's audited story, with the move it made."""
    return Counter(
        (log.action, log.metadata.get("old_status"), log.metadata.get("new_status"))
        for log in Log.objects.filter(order=order)
    )


@pytest.mark.django_db(transaction=True)
def test_every_periodic_task_run_twice_at_once_does_its_work_once(caplog):
    orders = world()

    failures = [failure for name in SCHEDULED for failure in twice_at_once(name)]

    # no run failed, nor caught and logged an error (a task that carries on past one)
    assert failures == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    unpaid, untaken, stalled, paid_out = (Order.objects.get(pk=o.pk) for o in orders)
    # the timers ran out once: each order expired once, the stalled ally penalized once
    for order in (unpaid, untaken, stalled):
        assert order.status == OrderStatus.EXPIRED
        assert [step for step, times in story(order).items() if times > 1] == []
        assert story(order)[(Action.ORDER_EXPIRED, None, None)] == 1
    assert AllyPenalty.objects.filter(order__in=orders).count() == 1
    # the refunds are owed once each, and the payout was signed and sent once
    refunds = Transfer.objects.filter(order__in=[untaken, stalled])
    assert sorted(refunds.values_list("purpose", flat=True)) == [Transfer.Purpose.REFUND] * 2
    release = Transfer.objects.get(order=paid_out)
    assert release.signed.count() == 1
    assert story(paid_out)[(Action.ESCROW_RELEASED, None, None)] == 1
