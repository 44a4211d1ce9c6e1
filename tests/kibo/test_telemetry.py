"""What each process counts as it works (kibo.telemetry): transitions once committed, the
wait for an ally, chain calls by endpoint, Celery tasks by outcome."""

import pytest
from django.db import transaction
from prometheus_client import REGISTRY

from escrow import chain
from escrow.chain import ChainUnavailable
from orders.models import Order
from orders.services import order_take
from orders.tasks import expire_due_orders
from tests.factories import make_ally, make_order, make_paid_order
from tests.helpers.networks import change_local_network


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_a_transition_counts_once_it_commits(django_capture_on_commit_callbacks):
    paid = {"from_status": "PENDING_PAYMENT", "to_status": "AVAILABLE"}
    taken = {"from_status": "AVAILABLE", "to_status": "TAKEN"}
    before = sample("kibo_order_transitions_total", **paid)
    waits = sample("kibo_order_seconds_since_paid_count", step="taken")

    with django_capture_on_commit_callbacks(execute=True):
        order = make_paid_order()
    assert sample("kibo_order_transitions_total", **paid) - before == 1

    with pytest.raises(RuntimeError), transaction.atomic():  # taken, then rolled back
        order_take(order_id=order.pk, ally=make_ally())
        raise RuntimeError
    before_taken = sample("kibo_order_transitions_total", **taken)
    with django_capture_on_commit_callbacks(execute=True):
        order_take(order_id=order.pk, ally=make_ally())

    assert sample("kibo_order_transitions_total", **taken) - before_taken == 1
    assert sample("kibo_order_seconds_since_paid_count", step="taken") - waits == 1


@pytest.mark.django_db
def test_expiries_count_by_the_status_they_left(django_capture_on_commit_callbacks):
    left = {"from_status": "PENDING_PAYMENT", "to_status": "EXPIRED"}
    before = sample("kibo_order_transitions_total", **left)
    orders = [make_order() for _ in range(3)]
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(expires_at="2000-01-01T00:00Z")

    with django_capture_on_commit_callbacks(execute=True):
        expire_due_orders.apply()

    assert sample("kibo_order_transitions_total", **left) - before == 3


@pytest.mark.django_db
def test_tasks_count_by_name_and_outcome():
    name = "orders.tasks.expire_due_orders"
    ok = {"task": name, "queue": "eager", "outcome": "success"}
    failed = {"task": name, "queue": "eager", "outcome": "failure"}
    before_ok, before_failed = (
        sample("kibo_celery_task_runs_total", **ok),
        sample("kibo_celery_task_runs_total", **failed),
    )
    timed = sample("kibo_celery_task_duration_seconds_count", task=name)

    expire_due_orders.apply()
    expire_due_orders.apply(args=["not", "its", "arguments"])

    assert sample("kibo_celery_task_runs_total", **ok) - before_ok == 1
    assert sample("kibo_celery_task_runs_total", **failed) - before_failed == 1
    assert sample("kibo_celery_task_duration_seconds_count", task=name) - timed == 2


@pytest.mark.usefixtures("chain")
def test_chain_calls_are_timed_and_failures_counted_by_endpoint_host(settings):
    live = settings.KIBO_NETWORKS["local"].rpc_urls[0]
    change_local_network(settings, rpc_urls=("http://key:secret@127.0.0.1:9/v3/apikey", live))
    live_host = live.split("//", 1)[1].split("/", 1)[0]
    down = {"network": "local", "endpoint": "127.0.0.1:9", "kind": "unreachable"}
    before = sample("kibo_rpc_errors_total", **down)
    calls = sample("kibo_rpc_request_duration_seconds_count", network="local", endpoint=live_host)

    chain.head_block("local")  # the first endpoint is down; the second answers

    assert sample("kibo_rpc_errors_total", **down) - before == 1
    assert (
        sample("kibo_rpc_request_duration_seconds_count", network="local", endpoint=live_host)
        - calls
        == 1
    )
    change_local_network(settings, rpc_urls=("http://127.0.0.1:9",))
    with pytest.raises(ChainUnavailable):
        chain.head_block("local")
    assert sample("kibo_rpc_errors_total", **down) - before == 2
    exposed = [
        s.labels
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name.startswith("kibo_rpc")
    ]
    assert not any("apikey" in str(labels) or "secret" in str(labels) for labels in exposed)
