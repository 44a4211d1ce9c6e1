"""What Prometheus scrapes. Two endpoints, both behind the token:

- `/metrics`: what this process and its siblings counted (HTTP requests per route: count by
  status, latency histogram; and kibo.telemetry's order, transfer, chain and quote figures).
  Scrape every web server. A Celery worker serves its own on KIBO_WORKER_METRICS_PORT.
- `/metrics/business`: the state of the business and its money, read from PostgreSQL on
  each scrape (BusinessCollector). Scrape it once, through any web server.

Under gunicorn each worker process counts its own requests; with PROMETHEUS_MULTIPROC_DIR
set (deploy/gunicorn.conf.py sets it, empties it on start and forgets a worker's files when
it exits), prometheus-client keeps those counts in files there and `/metrics` adds up every
worker's. Without it (one process: `make run`, the tests) the counts stay in memory.

`/metrics` is not public: it answers only a request that carries
`Authorization: Bearer <KIBO_METRICS_TOKEN>`, and is not there at all (404) while no token
is configured.
"""

import hmac
import logging
import time
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from kombu.exceptions import OperationalError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from allies.presence import allies_online_counts
from audit.partitions import logs_months_ahead, logs_rows_outside_months
from audit.retention import logs_partitions_due
from escrow.models import ChainCursor, EscrowSnapshot
from escrow.networks import configured_networks, network_spec
from escrow.selectors import transfer_figures
from escrow.sender import sender_would_pause
from kibo import config
from kibo.models import Backup, TableSize
from kibo.telemetry import counts_registry
from orders.models import OPEN_STATUSES
from orders.selectors import TOTAL, console_now, order_figures
from quotes.models import COUNTRY_FIAT, Fiat
from quotes.selectors import newest_quote_times

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "kibo_http_requests_total",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "kibo_http_request_duration_seconds",
    "Time to answer an HTTP request, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _route(request) -> str:
    """The route's name (its pattern's name, never the path: ids would make a series each)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class MetricsMiddleware:
    """Counts and times every request by route."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route(request)
        LATENCY.labels(route).observe(time.perf_counter() - started)
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        return response


def _authorized(request) -> None:
    """404 unless the request carries the scrape token (and one is configured)."""
    token = settings.KIBO_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Http404()


@require_GET
def metrics(request):
    """The figures this process and its siblings counted, for a scraper with the token."""
    _authorized(request)
    return HttpResponse(generate_latest(counts_registry()), content_type=CONTENT_TYPE_LATEST)


@require_GET
def business_metrics(request):
    """The business and its money now, read from PostgreSQL, for a scraper with the token."""
    _authorized(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BusinessCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _gauge(name: str, documentation: str, labels: dict[tuple, float], *names: str):
    family = GaugeMetricFamily(name, documentation, labels=list(names))
    for values, value in labels.items():
        family.add_metric(list(values), value)
    return family


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then else 0.0


class BusinessCollector:
    """Each figure a bounded, indexed query (orders, escrow and quotes selectors; `make
    bench` times a scrape at a million orders). Amounts are in whole tokens."""

    def collect(self):
        started = time.perf_counter()
        now = timezone.now()
        yield from self._orders(now)
        yield from self._transfers(now)
        yield from self._escrow(now)
        yield from self._chain(now)
        yield from self._quotes(now)
        yield from self._queues()
        yield from self._safety(now)
        yield _gauge(
            "kibo_business_scrape_duration_seconds",
            "How long reading these figures took.",
            {(): time.perf_counter() - started},
        )

    def _orders(self, now):
        figures = order_figures(now=now)
        yield _gauge(
            "kibo_orders_open",
            "Orders in an open status now, by status and currency.",
            {(s, f): figures.open.get((s, f), 0) for s in OPEN_STATUSES for f in Fiat.values},
            "status",
            "fiat",
        )
        yield _gauge(
            "kibo_orders_finished_last_day",
            "Orders created in the last 24 hours that reached a final status.",
            figures.finished_last_day,
            "status",
            "fiat",
        )
        yield _gauge(
            "kibo_order_oldest_available_seconds",
            "How long the longest-waiting paid order has waited for an ally (0: none waits).",
            {(f,): _age(now, figures.oldest_available_paid_at.get(f)) for f in Fiat.values},
            "fiat",
        )
        yield _gauge(
            "kibo_orders_due",
            "Open orders whose timer ran out and the expiry sweep has not expired yet.",
            {(s,): figures.due.get(s, 0) for s in OPEN_STATUSES},
            "status",
        )
        online = allies_online_counts(countries=list(COUNTRY_FIAT), now=now)
        yield _gauge(
            "kibo_allies_online",
            "Allies online now (the board's switch or their working hours), by currency.",
            {(COUNTRY_FIAT[c],): n for c, n in online.items()},
            "fiat",
        )
        now_figures = {f: n for f, n in console_now().items() if f != TOTAL}
        for name, attribute, documentation in (
            ("kibo_allies_working", "working_allies", "Allies holding an order."),
            ("kibo_allies_penalized", "penalized_allies", "Allies with a penalty in force."),
            ("kibo_disputes_open", "open_disputes", "Disputes waiting for staff."),
            (
                "kibo_disputes_overdue",
                "overdue_disputes",
                "Disputes open longer than DISPUTE_SLA_HOURS.",
            ),
        ):
            yield _gauge(
                name,
                documentation,
                {(f,): getattr(n, attribute) for f, n in now_figures.items()},
                "fiat",
            )

    def _transfers(self, now):
        figures = transfer_figures(now=now)
        yield _gauge(
            "kibo_transfers",
            "Transfers out of escrow not yet done (held, frozen, pending, waiting, signed) "
            "or failed, by purpose, status and network.",
            figures.waiting_on,
            "purpose",
            "status",
            "network",
        )
        networks = [spec.name for spec in configured_networks()]
        yield _gauge(
            "kibo_transfer_oldest_unconfirmed_seconds",
            "Since the oldest transfer still unconfirmed was first signed (0: none).",
            {(n,): _age(now, figures.oldest_sent_at.get(n)) for n in networks},
            "network",
        )
        yield _gauge(
            "kibo_transfers_waiting_for_coin",
            "Transfers WAITING because the escrow wallet lacks a coin, by the coin it lacks.",
            figures.short_of,
            "network",
            "coin",
        )
        yield _gauge(
            "kibo_escrow_gas_spent_last_week",
            "Gas coin paid in fees by transfers created in the last 7 days.",
            {
                (n,): figures.gas_spent_last_week.get(n, 0)
                / 10 ** network_spec(n).gas_coin.decimals
                for n in networks
            },
            "network",
        )

    def _escrow(self, now):
        balance, expected, drift, reconciled, age, gas = {}, {}, {}, {}, {}, {}
        for snap in EscrowSnapshot.objects.all():
            key, unit = (snap.network, snap.token), 10**snap.decimals
            balance[key] = int(snap.on_chain) / unit
            expected[key] = int(snap.expected) / unit
            drift[key] = int(snap.difference) / unit
            reconciled[key] = 1 if snap.ok else 0
            age[key] = _age(now, snap.taken_at)
            if snap.token == network_spec(snap.network).gas_coin.symbol:
                gas[(snap.network,)] = balance[key]
        labels = ("network", "token")
        yield _gauge(
            "kibo_escrow_balance",
            "What the escrow wallet held at the last snapshot.",
            balance,
            *labels,
        )
        yield _gauge(
            "kibo_escrow_expected",
            "What the records say it should hold.",
            expected,
            *labels,
        )
        yield _gauge(
            "kibo_escrow_drift",
            "On chain less the records (0 for a token; the gas coin may only be above).",
            drift,
            *labels,
        )
        yield _gauge(
            "kibo_escrow_reconciled",
            "1 when the last snapshot matched the records, 0 when it did not.",
            reconciled,
            *labels,
        )
        yield _gauge(
            "kibo_escrow_snapshot_age_seconds",
            "Since the last escrow snapshot.",
            age,
            *labels,
        )
        yield _gauge(
            "kibo_escrow_gas_balance",
            "The gas coin the escrow wallet held at the last snapshot.",
            gas,
            "network",
        )

    def _chain(self, now):
        lag, checked, head_age = {}, {}, {}
        for cursor in ChainCursor.objects.all():
            key = (cursor.network,)
            lag[key] = max(0, (cursor.head_number or cursor.block_number) - cursor.block_number)
            checked[key] = _age(now, cursor.checked_at or cursor.updated_at)
            head_age[key] = _age(now, cursor.head_time)
        yield _gauge(
            "kibo_watcher_lag_blocks",
            "Blocks the deposit watcher had not scanned, behind the node's head at its last run.",
            lag,
            "network",
        )
        yield _gauge(
            "kibo_watcher_checked_age_seconds",
            "Since the deposit watcher last ran to the end.",
            checked,
            "network",
        )
        yield _gauge(
            "kibo_chain_head_age_seconds",
            "How old the node's newest block was at the watcher's last run (a node behind).",
            head_age,
            "network",
        )

    def _quotes(self, now):
        yield _gauge(
            "kibo_quote_age_seconds",
            "Since the active quote of each pair was fetched.",
            {(f"{t}/{f}",): _age(now, at) for (t, f), at in newest_quote_times().items()},
            "pair",
        )
        yield _gauge(
            "kibo_quote_max_age_seconds",
            "QUOTE_MAX_AGE_SECONDS: older quotes are not offered.",
            {(): config.QUOTE_MAX_AGE_SECONDS.get()},
        )

    def _safety(self, now):
        newest = Backup.objects.order_by("-finished_at").values_list("finished_at", flat=True)
        finished = newest.first()
        yield _gauge(
            "kibo_backup_last_success_timestamp_seconds",
            "When the newest good backup in pgBackRest's repository finished (0: none seen).",
            {(): finished.timestamp() if finished else 0.0},
        )
        sizes = TableSize.objects.filter(
            day=TableSize.objects.order_by("-day").values("day")[:1]
        ).values_list("table", "table_bytes", "index_bytes", "rows")
        measured = list(sizes)
        yield _gauge(
            "kibo_table_bytes",
            "Each table's size at beat's last weekly measure: its rows (part=table) and its "
            "indexes (part=indexes), every partition added up.",
            {
                **{(t, "table"): table for t, table, _, _ in measured},
                **{(t, "indexes"): indexes for t, _, indexes, _ in measured},
            },
            "table",
            "part",
        )
        yield _gauge(
            "kibo_table_rows",
            "Each table's rows at beat's last weekly measure (PostgreSQL's estimate).",
            {(t,): rows for t, _, _, rows in measured},
            "table",
        )
        today = now.date()
        yield _gauge(
            "kibo_audit_months_ahead",
            "Months after this one whose audit-log partition is made (beat keeps 3).",
            {(): logs_months_ahead(today=today)},
        )
        yield _gauge(
            "kibo_audit_rows_outside_months",
            "Audit rows in the default partition: written where no month's partition was.",
            {(): logs_rows_outside_months()},
        )
        yield _gauge(
            "kibo_audit_months_past_retention",
            "Audit months past AUDIT_RETENTION_MONTHS still in the database (archive pending).",
            {
                (): len(
                    logs_partitions_due(
                        today=today, retention_months=config.AUDIT_RETENTION_MONTHS.get()
                    )
                )
            },
        )
        yield _gauge(
            "kibo_sender_paused",
            "1 while the escrow sender is paused (after a restore or a failover, until "
            "escrow_recover passes).",
            {(): 1 if sender_would_pause() else 0},
        )

    def _queues(self):
        lengths, up = {}, 1
        try:
            with current_app.connection_for_read(connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
                channel = connection.default_channel
                for queue in current_app.amqp.queues:
                    try:
                        lengths[(queue,)] = channel.queue_declare(queue, passive=True)[1]
                    except connection.channel_errors:  # never declared yet: empty
                        lengths[(queue,)] = 0
                        channel = connection.channel()  # AMQP closes the one that erred
        except (OSError, OperationalError) as error:
            logger.warning("the broker did not answer the scrape: %s", error)
            up = 0
        yield _gauge(
            "kibo_celery_queue_length",
            "Tasks waiting in each Celery queue.",
            lengths,
            "queue",
        )
        yield _gauge("kibo_broker_up", "1 when the broker answered the scrape.", {(): up})
