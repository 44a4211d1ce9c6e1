"""The figures each process counts as it works, for Prometheus (kibo.metrics serves them).

Counters and histograms only: they add up across gunicorn's and Celery's worker processes
(multiprocess mode, PROMETHEUS_MULTIPROC_DIR). What is true of the database at a moment (how
many orders wait, how old the oldest transfer is) is not counted here but read on each
scrape (kibo.metrics.BusinessCollector).

A figure about work done in a transaction is counted when it commits (`transaction.on_commit`):
a rolled-back transition did not happen.
"""

import os
import shutil
from urllib.parse import urlsplit

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess

ORDER_TRANSITIONS = Counter(
    "kibo_order_transitions_total",
    "Orders that moved from one status to another (expiries included).",
    ["from_status", "to_status"],
)
ORDER_WAIT = Histogram(
    "kibo_order_seconds_since_paid",
    "Time from an order's payment to an ally taking it (step=taken) or to the ally's "
    "receipt completing it (step=completed).",
    ["step"],
    buckets=(5, 15, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600),
)
TRANSFERS_SENT = Counter(
    "kibo_transfers_finished_total",
    "Transfers out of escrow that reached an end on chain, by purpose, network and outcome.",
    ["purpose", "network", "status"],
)
RPC_SECONDS = Histogram(
    "kibo_rpc_request_duration_seconds",
    "Time a chain node took to answer, by network and endpoint (its host, never its path: "
    "a provider's URL may hold a key).",
    ["network", "endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RPC_ERRORS = Counter(
    "kibo_rpc_errors_total",
    "Chain node calls that failed: unreachable (no answer) or error (an error answer).",
    ["network", "endpoint", "kind"],
)
QUOTE_REFRESHES = Counter(
    "kibo_quote_refreshes_total",
    "Rate refreshes per pair: stored (from the first source, or a fallback), refused (a "
    "jump or a second source disagreed) or unavailable (no source answered).",
    ["pair", "source", "fallback", "outcome"],
)
TASK_RUNS = Counter(
    "kibo_celery_task_runs_total",
    "Celery tasks run, by task, queue and outcome (success, failure, retry).",
    ["task", "queue", "outcome"],
)
TASK_SECONDS = Histogram(
    "kibo_celery_task_duration_seconds",
    "How long a Celery task ran, by task.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
NOTICES_SENT = Counter(
    "kibo_notices_sent_total",
    "Notices to people, per channel (push, telegram), kind (what about) and outcome: sent, "
    "gone (the device or chat is no more, forgotten), retried, or failed (given up).",
    ["channel", "kind", "outcome"],
)
NOTICE_SECONDS = Histogram(
    "kibo_notice_delivery_seconds",
    "Time from a notice being due (its transaction's commit) to a batch's last message "
    "leaving Kibo, by kind.",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
)


def endpoint_label(url: str) -> str:
    """An RPC URL as a label: its host and port, never its path or query (API keys)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or "unknown"


# --- processes that count together (gunicorn's workers, a Celery worker's pool) -----------


def _multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def counts_start() -> None:
    """Forget an earlier run's counts (they would add up with this one's): the parent, before
    its worker processes start (deploy/gunicorn.conf.py, kibo.celery)."""
    if directory := _multiprocess_dir():
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)


def counts_forget(pid: int) -> None:
    """A worker process ended: its live gauges no longer count (its counters still do)."""
    if _multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def counts_registry() -> CollectorRegistry:
    """What to serve: every process's counts added up, or this process's own."""
    if not _multiprocess_dir():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
