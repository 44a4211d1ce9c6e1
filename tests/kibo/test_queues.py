"""Each kind of work has its own queue, so that a slow kind never holds up another."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audit.models import Action, Log
from escrow.models import Transfer
from kibo.celery import app
from orders.models import Order, OrderStatus
from orders.tasks import expire_due_orders
from tests.factories import expire_timer, make_order, make_paid_order
from tests.helpers.loopback import SilentServer
from tests.helpers.processes import wait_for

CHAIN = {
    "escrow.tasks.process_transfer",
    "escrow.tasks.process_transfers",
    "escrow.tasks.process_unfinished_transfers",
    "escrow.tasks.watch_deposits",
    "escrow.tasks.check_deposit",
    "escrow.tasks.snapshot_escrow",
}
SWEEPS = {
    "orders.tasks.expire_due_orders",
    "orders.tasks.warn_receipts_due",
    "orders.tasks.roll_up_daily_stats",
    "allies.tasks.sample_presence",
}
NOTICES = {"orders.tasks.call_allies", "kibo.tasks.deliver_notice", "kibo.tasks.read_telegram"}


def queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def test_every_task_calling_a_chain_is_on_the_chain_queue_and_the_timers_on_their_own():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.split(".")[0] in settings.INSTALLED_APPS}
    assert ours >= CHAIN | SWEEPS | NOTICES
    for task in ours:
        expected = (
            "chain"
            if task in CHAIN
            else "sweeps"
            if task in SWEEPS
            else "notices"
            if task in NOTICES
            else "celery"
        )
        assert queue_of(task) == expected, task


def test_every_periodic_task_goes_to_a_queue_some_worker_consumes():
    queues = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert queue_of(entry["task"]) in queues


@pytest.mark.slow  # a worker process
@pytest.mark.django_db(transaction=True)
def test_a_worker_off_the_chain_queues_runs_the_timers_without_the_escrow_key(celery_worker):
    # given a worker of the timers, started as deployed: no escrow key
    celery_worker(queues="sweeps,notices,celery", KIBO_ESCROW_PRIVATE_KEY=None)
    order = make_order()
    expire_timer(order)
    # when beat asks for the expiry sweep
    expire_due_orders.delay()
    # then that worker runs it
    assert wait_for(
        lambda: Order.objects.get(pk=order.pk).status == OrderStatus.EXPIRED, seconds=30
    )


@pytest.mark.slow  # workers, beat, and a node that hangs
@pytest.mark.django_db(transaction=True)
def test_a_hung_rpc_node_does_not_delay_the_expiry_of_due_orders(celery_worker, celery_beat):
    with SilentServer() as hung:
        # given the chain's node hangs (every call waits for its timeout), a signing worker
        # and a timers' worker as deployed, and beat driving both
        node = {"KIBO_RPC_URL_LOCAL": hung.url}
        celery_worker(queues="chain,returns", **node)
        celery_worker(queues="sweeps,notices,celery", KIBO_ESCROW_PRIVATE_KEY=None, **node)
        celery_beat(**node)
        assert wait_for(lambda: hung.callers > 0, seconds=30)  # the chain's worker waits
        # and paid orders nobody takes, due to expire in a few seconds
        orders = [make_paid_order() for _ in range(3)]
        due = timezone.now() + timedelta(seconds=3)
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(expires_at=due)

        # when their time comes, with the chain's queue stuck behind the hung node
        def expired() -> bool:
            return (
                Order.objects.filter(pk__in=[o.pk for o in orders], status="EXPIRED").count() == 3
            )

        assert wait_for(expired, seconds=15)
        # then each expired within a second or two of its time
        expiries = Log.objects.filter(order__in=orders, action=Action.ORDER_EXPIRED)
        assert expiries.count() == 3
        lateness = max((log.created_at - due).total_seconds() for log in expiries)
        assert lateness < 2.5, lateness
        # while their refunds still wait for the node: the chain's queue really is stuck
        refunds = Transfer.objects.filter(order__in=orders, purpose=Transfer.Purpose.REFUND)
        assert refunds.count() == 3
        assert not refunds.exclude(status=Transfer.Status.PENDING).exists()
