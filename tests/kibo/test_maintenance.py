"""The database upkeep the operator relies on: hot tables vacuumed early, the views they
read in psql, and table sizes recorded weekly for the dashboard."""

import pytest
from django.db import connection

from kibo.maintenance import table_sizes_record
from kibo.models import TableSize
from tests.factories import make_paid_order

pytestmark = pytest.mark.django_db


def reloptions(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [table])
        return set(cursor.fetchone()[0] or [])


def test_the_hot_tables_are_vacuumed_and_analyzed_early():
    for table in ("orders", "transfers"):
        assert {
            "autovacuum_vacuum_scale_factor=0.02",
            "autovacuum_analyze_scale_factor=0.01",
            "fillfactor=90",
        } <= reloptions(table)


def test_the_operator_views_answer():
    make_paid_order()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders")
        cursor.execute("SELECT table_name, live_rows, dead_percent FROM ops_table_health")
        health = {row[0]: row for row in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM ops_long_running_queries")
        (running,) = cursor.fetchone()
        cursor.execute("SELECT to_regclass('ops_slow_statements') IS NOT NULL")
        (slow_view,) = cursor.fetchone()
    assert {"orders", "transfers", "logs"} <= set(health)
    assert running >= 0
    assert slow_view  # the test database may install pg_stat_statements


def test_table_sizes_are_recorded_once_a_day_for_every_table(client, settings):
    make_paid_order()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    recorded = table_sizes_record()
    table_sizes_record()  # twice the same day: one row per table still

    sizes = {size.table: size for size in TableSize.objects.all()}
    assert recorded == len(sizes) and {"orders", "logs", "transfers", "users"} <= set(sizes)
    assert sizes["orders"].table_bytes > 0 and sizes["orders"].index_bytes > 0
    assert sizes["orders"].rows >= 1
    settings.KIBO_METRICS_TOKEN = "t0ken-for-sizes"
    text = client.get("/metrics/business", HTTP_AUTHORIZATION="Bearer t0ken-for-sizes")
    assert 'kibo_table_bytes{part="indexes",table="orders"}' in text.content.decode()
