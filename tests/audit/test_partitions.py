"""The audit log is partitioned by month: written across a month's end into the right
partitions, each append-only, and months ahead made before they are needed."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import Action, Log
from audit.partitions import logs_partitions, logs_partitions_ensure, month_start

pytestmark = pytest.mark.django_db


def logged_at(at: datetime) -> str:
    """Write an entry dated `at` (the database dates them itself); the partition it is in."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO logs (id, action, metadata, created_at) "
            "VALUES (gen_random_uuid(), 'CONFIG_CHANGED', '{}', %s) "
            "RETURNING tableoid::regclass::text",
            [at],
        )
        return cursor.fetchone()[0]


def test_the_log_is_partitioned_by_month_with_months_made_ahead():
    today = timezone.now().date()
    names = {name for name, _ in logs_partitions()}
    for ahead in range(4):
        month = month_start(today, plus=ahead)
        assert f"logs_y{month:%Y}m{month:%m}" in names
    assert "logs_default" in names
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'logs'::regclass"
        )
        assert cursor.fetchone() == ("r",)


def test_entries_either_side_of_a_months_end_go_to_their_months():
    next_month = month_start(timezone.now().date(), plus=1)
    boundary = datetime(next_month.year, next_month.month, 1, tzinfo=UTC)

    last_moment = logged_at(boundary - timedelta(microseconds=1))
    first_moment = logged_at(boundary)

    this_month = month_start(next_month, plus=-1)
    assert last_moment == f"logs_y{this_month:%Y}m{this_month:%m}"
    assert first_moment == f"logs_y{next_month:%Y}m{next_month:%m}"
    assert Log.objects.filter(created_at__gte=boundary - timedelta(seconds=1)).count() == 2


def test_every_partition_is_append_only():
    logs_partitions_ensure(today=date(2031, 5, 20), months_ahead=1)  # and new ones too
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
              JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             WHERE inhparent = 'logs'::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = child.oid
                               AND t.tgname = 'logs_append_only')
            """
        )
        assert cursor.fetchall() == []
    entry = Log.objects.create(action=Action.CONFIG_CHANGED)
    for statement in (
        "UPDATE logs SET action = 'X' WHERE id = %s",
        "DELETE FROM logs WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])


def test_beat_makes_the_coming_months_once():
    made = logs_partitions_ensure(today=date(2032, 11, 3), months_ahead=3)
    again = logs_partitions_ensure(today=date(2032, 11, 30), months_ahead=3)
    assert made == again == ["logs_y2032m11", "logs_y2032m12", "logs_y2033m01", "logs_y2033m02"]
    bounds = dict(logs_partitions())
    assert bounds["logs_y2032m12"] == (
        "FOR VALUES FROM ('2032-12-01 00:00:00+00') TO ('2033-01-01 00:00:00+00')"
    )
