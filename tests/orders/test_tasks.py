import pytest

from orders.models import Order, OrderStatus
from orders.tasks import expire_due_orders
from tests.factories import expire_timer, make_order, make_paid_order
from tests.helpers.processes import wait_for

pytestmark = pytest.mark.slow  # a real worker through the real broker


@pytest.mark.django_db(transaction=True)
def test_the_sweep_runs_in_a_real_worker_through_the_real_broker(celery_worker):
    # given one due order and one that still has time
    due = make_order()
    expire_timer(due)
    waiting = make_paid_order()

    # when beat's task is sent through the broker
    worker = celery_worker()
    expire_due_orders.delay()

    # then the worker process expires the due order only
    assert wait_for(
        lambda: Order.objects.get(pk=due.pk).status == OrderStatus.EXPIRED, seconds=60
    ), "the worker did not expire the order"
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.AVAILABLE
    assert worker.poll() is None


def test_beat_schedules_the_sweep_every_few_seconds_with_an_expiry():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["expire-due-orders"]
    assert entry["task"] == expire_due_orders.name
    assert 0 < entry["schedule"] <= 10 and entry["options"]["expires"] <= entry["schedule"]
