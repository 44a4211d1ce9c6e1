"""/metrics/business: the business and its money as PostgreSQL holds them, read on each
scrape with a fixed number of queries."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from escrow.models import ChainCursor, EscrowSnapshot, SenderState, SignedTransaction, Transfer
from escrow.transfers import transfer_process
from kibo.backups import backups_record
from kibo.models import Backup
from kibo.tasks import record_backups
from orders.models import Order
from tests.factories import (
    expire_timer,
    make_ally,
    make_order,
    make_paid_order,
    make_quote,
    make_taken_order,
)
from tests.helpers.money import completed_order
from tests.helpers.networks import change_local_network

TOKEN = "scrape-me-9f2c1b7e"
pytestmark = pytest.mark.django_db


def scrape(client) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics/business", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    figures: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            figures.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return figures


def value(figures, name: str, **labels) -> float:
    return figures[name][tuple(sorted(labels.items()))]


@pytest.fixture(autouse=True)
def token(settings):
    settings.KIBO_METRICS_TOKEN = TOKEN


def test_the_business_figures_are_not_public(client, settings):
    assert client.get("/metrics/business").status_code == 404
    assert client.get("/metrics/business", HTTP_AUTHORIZATION="Bearer no").status_code == 404
    settings.KIBO_METRICS_TOKEN = ""
    assert client.get("/metrics/business").status_code == 404


def test_orders_waiting_and_due_are_read_from_the_database(client):
    # given one order waiting for payment whose timer ran out, one paid two minutes ago
    # and waiting for an ally, and one taken in Mexico
    late = make_order()
    expire_timer(late)
    waiting = make_paid_order()
    Order.objects.filter(pk=waiting.pk).update(paid_at=timezone.now() - timedelta(minutes=2))
    make_taken_order(fiat="MXN", ally=make_ally(country="MX"))

    figures = scrape(client)

    assert value(figures, "kibo_orders_open", status="PENDING_PAYMENT", fiat="BOB") == 1
    assert value(figures, "kibo_orders_open", status="AVAILABLE", fiat="BOB") == 1
    assert value(figures, "kibo_orders_open", status="TAKEN", fiat="MXN") == 1
    assert value(figures, "kibo_orders_open", status="TAKEN", fiat="BOB") == 0
    assert value(figures, "kibo_orders_due", status="PENDING_PAYMENT") == 1
    assert value(figures, "kibo_orders_due", status="AVAILABLE") == 0
    assert 120 <= value(figures, "kibo_order_oldest_available_seconds", fiat="BOB") < 150
    assert value(figures, "kibo_order_oldest_available_seconds", fiat="ARS") == 0
    assert value(figures, "kibo_allies_working", fiat="MXN") == 1


def test_a_scrape_costs_the_same_queries_however_much_there_is(
    client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(25) as few:  # 24, and the allies online
        scrape(client)
    for _ in range(3):
        make_taken_order()
        make_paid_order(fiat="ARS", amount_fiat="20000.00")
    make_quote(token="USDC", fiat="MXN")
    with django_assert_max_num_queries(len(few.captured_queries)):
        scrape(client)


@pytest.mark.slow  # signs on the chain
@pytest.mark.usefixtures("chain")
def test_an_unconfirmed_transfer_and_the_books_show(client, settings):
    # given a payout signed and sent eleven minutes ago that the chain has not confirmed
    _, _, release = completed_order()
    change_local_network(settings, confirmations=50)
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.SIGNED
    SignedTransaction.objects.filter(transfer=release).update(
        created_at=timezone.now() - timedelta(minutes=11)
    )
    # and the last snapshot found a USDT less on chain than the records say
    EscrowSnapshot.objects.create(
        network="local", token="USDT", decimals=6, block=10, on_chain=4_000_000,
        expected=5_000_000, locked=5_000_000, ok=False, taken_at=timezone.now(),
    )  # fmt: skip
    EscrowSnapshot.objects.create(
        network="local", token="ETH", decimals=18, block=10, on_chain=3 * 10**18,
        expected=2 * 10**18, locked=0, ok=True, taken_at=timezone.now(),
    )  # fmt: skip
    ChainCursor.objects.update_or_create(
        network="local",
        defaults={"block_number": 100, "block_hash": "0x" + "0" * 64, "head_number": 130},
    )

    figures = scrape(client)

    assert (
        value(figures, "kibo_transfers", purpose="RELEASE", status="SIGNED", network="local") == 1
    )
    assert value(figures, "kibo_transfer_oldest_unconfirmed_seconds", network="local") >= 660
    assert value(figures, "kibo_escrow_drift", network="local", token="USDT") == -1
    assert value(figures, "kibo_escrow_reconciled", network="local", token="USDT") == 0
    assert value(figures, "kibo_escrow_reconciled", network="local", token="ETH") == 1
    assert value(figures, "kibo_escrow_gas_balance", network="local") == 3
    assert value(figures, "kibo_watcher_lag_blocks", network="local") == 30


def test_quote_ages_the_queues_and_the_audit_months(client):
    make_quote(token="USDC", fiat="ARS", age_seconds=400)

    figures = scrape(client)

    assert value(figures, "kibo_audit_months_ahead") >= 3
    assert value(figures, "kibo_audit_rows_outside_months") == 0
    assert value(figures, "kibo_audit_months_past_retention") == 0
    assert 400 <= value(figures, "kibo_quote_age_seconds", pair="USDC/ARS") < 430
    assert value(figures, "kibo_quote_max_age_seconds") > 0
    assert value(figures, "kibo_broker_up") == 1
    assert value(figures, "kibo_celery_queue_length", queue="returns") == 0


def test_the_last_good_backup_and_a_paused_sender_show(client, tmp_path, settings):
    figures = scrape(client)
    assert value(figures, "kibo_backup_last_success_timestamp_seconds") == 0  # none seen
    assert value(figures, "kibo_sender_paused") == 0

    finished = timezone.now() - timedelta(hours=3)
    Backup.objects.create(
        label="20261203-010000F", kind="full", started_at=finished - timedelta(minutes=5),
        finished_at=finished, database_bytes=10, repository_bytes=2,
    )  # fmt: skip
    SenderState.objects.update_or_create(pk=1, defaults={"timeline": 0})  # a restore

    figures = scrape(client)
    assert value(figures, "kibo_backup_last_success_timestamp_seconds") == finished.timestamp()
    assert value(figures, "kibo_sender_paused") == 1


def test_without_a_readable_repository_beat_records_nothing_and_says_why(settings, caplog):
    settings.KIBO_PGBACKREST_CONFIG = ""
    assert backups_record() == 0
    settings.KIBO_PGBACKREST_CONFIG = "/nonexistent/pgbackrest.conf"
    assert record_backups() == 0
    assert "the backup repository could not be read" in caplog.text
    assert not Backup.objects.exists()
