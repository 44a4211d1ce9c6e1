import re
import signal
import time
from collections import Counter

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from kibo.beat import LEADER_CHECK_SECONDS, Leadership, lock_database_url
from tests.helpers.processes import direct_database_url, wait_for

SENT = re.compile(r"Sending due task ([\w-]+)")
SWEEP_SECONDS = 0.5  # the celery_beat fixture's chain and expiry sweeps


@pytest.fixture
def leaders():
    """Leadership objects on the test database, each as in its own beat process."""
    made: list[Leadership] = []

    def make() -> Leadership:
        made.append(Leadership(direct_database_url()))
        return made[-1]

    yield make
    for leadership in made:
        leadership.release()


@pytest.mark.django_db
def test_one_beat_leads_and_the_other_waits(leaders):
    # given two beats on two machines
    first, second = leaders(), leaders()
    # when both try to lead
    # then the first to try leads, and the second waits while it does
    assert first.held()
    assert not second.held()
    assert first.held()
    assert not second.held()


@pytest.mark.django_db
def test_the_standby_leads_once_the_leader_stops(leaders):
    first, second = leaders(), leaders()
    assert first.held()
    # when the leader stops
    first.release()
    # then the standby leads at its next try
    assert second.held()
    assert not first.held()


@pytest.mark.django_db(transaction=True)
def test_a_leader_that_loses_its_connection_stops_sending(leaders):
    # given a leader
    first, second = leaders(), leaders()
    assert first.held()
    pid = first._connection.info.backend_pid
    # when PostgreSQL ends its session (a network cut, an operator), the lock goes with it
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert second.held()
    # then the old leader learns it no longer leads at its next check
    time.sleep(LEADER_CHECK_SECONDS)
    assert not first.held()
    assert not first.held()


def test_through_pgbouncer_the_lock_needs_a_direct_connection(settings):
    settings.KIBO_DB_PGBOUNCER = True
    settings.KIBO_BEAT_LOCK_DATABASE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="KIBO_BEAT_LOCK_DATABASE_URL"):
        lock_database_url()
    settings.KIBO_BEAT_LOCK_DATABASE_URL = "postgres://kibo@db.internal:5432/kibo"
    assert lock_database_url() == "postgres://kibo@db.internal:5432/kibo"


def sent(log) -> Counter:
    return Counter(SENT.findall(log.read_text()))


@pytest.mark.slow  # two beats for a minute
@pytest.mark.django_db(transaction=True)
def test_two_beats_send_each_task_once_per_interval_and_the_standby_takes_over(
    celery_beat, tmp_path
):
    # given two beats, one per machine, started together
    logs = [tmp_path / "beat-a.log", tmp_path / "beat-b.log"]
    beats = [celery_beat(output=log, KIBO_TASK_LOG_LEVEL="INFO") for log in logs]
    assert wait_for(lambda: any("beat leads" in log.read_text() for log in logs), seconds=30)
    leader = next(i for i, log in enumerate(logs) if "beat leads" in log.read_text())
    standby = 1 - leader
    # when they run side by side for a minute
    before = sent(logs[leader])
    started = time.monotonic()
    time.sleep(60)
    elapsed = time.monotonic() - started
    # then the leader sent each sweep once per interval, and the standby sent nothing
    during = sent(logs[leader]) - before
    expected = elapsed / SWEEP_SECONDS
    for entry in ("expire-due-orders", "watch-deposits", "process-transfers"):
        assert expected - 4 <= during[entry] <= expected + 1, (entry, during[entry], expected)
    assert sent(logs[standby]) == Counter()
    assert "beat leads" not in logs[standby].read_text()

    # when the leader's machine loses it (SIGKILL: no goodbye)
    beats[leader].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    # then the standby leads within its poll interval, and sends
    assert wait_for(lambda: "beat leads" in logs[standby].read_text(), seconds=10)
    took_over = time.monotonic() - killed
    assert took_over < 3, took_over
    assert wait_for(lambda: sent(logs[standby])["expire-due-orders"] >= 4, seconds=5)
