import os
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from kibo.env import BASE_DIR
from orders.models import Order, OrderStatus
from orders.tasks import expire_due_orders
from tests.factories import expire_timer, make_order, make_paid_order


def worker_database_url() -> str:
    """DATABASE_URL, pointed at the database pytest-django created for this session."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture
def celery_worker_process():
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DJANGO_SETTINGS_MODULE": "kibo.settings.test",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kibo",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=env,
    )
    yield worker
    worker.terminate()
    worker.wait(timeout=20)


def wait_for(condition, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_the_sweep_runs_in_a_real_worker_through_the_real_broker(celery_worker_process):
    # given one due order and one that still has time
    due = make_order()
    expire_timer(due)
    waiting = make_paid_order()

    # when beat's task is sent through the broker
    expire_due_orders.delay()

    # then the worker process expires the due order only
    assert wait_for(
        lambda: Order.objects.get(pk=due.pk).status == OrderStatus.EXPIRED, seconds=60
    ), "the worker did not expire the order"
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.AVAILABLE
    assert celery_worker_process.poll() is None


def test_beat_schedules_the_sweep_every_few_seconds_with_an_expiry():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["expire-due-orders"]
    assert entry["task"] == expire_due_orders.name
    assert 0 < entry["schedule"] <= 10 and entry["options"]["expires"] <= entry["schedule"]
