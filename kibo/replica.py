"""Reads from the streaming replica, where a second or two of staleness is safe.

Every query goes to the primary unless a view says otherwise with `@reads_replica`: the
heavy pages that only show figures and lists (the staff console, the admin's lists and
searches, an ally's stats, a payer's order history). Everything that decides about money or
state (a service, the board, an order's status panel, any POST) reads the primary, and so
does every read inside a transaction on it.

A marked view still reads the primary when
- the browser wrote a moment ago (`ReadYourWritesMiddleware`: after any POST, for
  KIBO_READ_YOUR_WRITES_SECONDS), so a payer who just paid sees their order paid;
- the replica does not answer, or lags more than KIBO_REPLICA_MAX_LAG_SECONDS.
`kibo_replica_reads_total` counts where each marked request read, and why.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, connections
from prometheus_client import Counter

logger = logging.getLogger(__name__)

PRIMARY, REPLICA = "default", "replica"
WROTE_COOKIE = "kibo_wrote"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

READS = Counter(
    "kibo_replica_reads_total",
    "Requests for pages that may read the replica, by where they read and why: "
    "replica/fresh, or primary/recent_write, primary/down, primary/lagging.",
    ["database", "reason"],
)

# The replica's lag in seconds: 0 when it has replayed all it received (or was promoted),
# else the time since the last transaction it replayed committed on the primary.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())
END
"""

_reading_replica: ContextVar[bool] = ContextVar("reading_replica", default=False)


class ReplicaRouter:
    """The replica inside a `@reads_replica` view, outside any transaction; the primary for
    everything else, writes and migrations always. An explicit answer each time: Django
    would otherwise read a related row from wherever its instance came from."""

    def db_for_read(self, model, **hints):
        if _reading_replica.get() and not connections[PRIMARY].in_atomic_block:
            return REPLICA
        return PRIMARY

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two copies of it

    def allow_migrate(self, db, app_label, **hints):
        return db == PRIMARY


def replica_lag() -> float | None:
    """Seconds the replica is behind the primary; None when there is none or it does not
    answer (its connection is then closed, so a later request connects afresh)."""
    if not settings.DATABASE_REPLICA_URL:
        return None
    connection = connections[REPLICA]
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            (lag,) = cursor.fetchone()
    except DatabaseError as error:
        logger.warning("the replica did not answer: %s", error)
        connection.close()
        return None
    return float(lag or 0)


def _where_to_read(request) -> tuple[str, str]:
    if WROTE_COOKIE in request.COOKIES or request.method not in SAFE_METHODS:
        return PRIMARY, "recent_write"
    lag = replica_lag()
    if lag is None:
        return PRIMARY, "down"
    if lag > settings.KIBO_REPLICA_MAX_LAG_SECONDS:
        return PRIMARY, "lagging"
    return REPLICA, "fresh"


def reads_replica(view):
    """Mark a view whose reads tolerate KIBO_REPLICA_MAX_LAG_SECONDS of staleness. A
    template response is rendered inside, so that its lazy queries read where the view did."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.DATABASE_REPLICA_URL:
            return view(request, *args, **kwargs)
        database, reason = _where_to_read(request)
        READS.labels(database="replica" if database == REPLICA else "primary", reason=reason).inc()
        token = _reading_replica.set(database == REPLICA)
        try:
            response = view(request, *args, **kwargs)
            if callable(getattr(response, "render", None)) and not response.is_rendered:
                response.render()
            return response
        finally:
            _reading_replica.reset(token)

    return wrapper


class ReadYourWritesMiddleware:
    """After a request that may have written, the browser's next reads go to the primary
    for KIBO_READ_YOUR_WRITES_SECONDS: longer than the replica may lag."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DATABASE_REPLICA_URL and request.method not in SAFE_METHODS:
            response.set_cookie(
                WROTE_COOKIE,
                "1",
                max_age=settings.KIBO_READ_YOUR_WRITES_SECONDS,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
