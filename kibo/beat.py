"""Celery beat on more than one machine: only the leader schedules.

Every beat process (one per machine, for failover) runs `LeaderScheduler`. Before it sends
anything it must hold a PostgreSQL advisory lock on a connection of its own; the others
wait, trying again every KIBO_BEAT_LEADER_POLL_SECONDS. A session lock lives exactly as long
as the session that took it, so:

- a leader killed outright (SIGKILL, a crash) closes its socket, PostgreSQL lets the lock
  go at once, and a standby takes it on its next try;
- a leader whose machine vanishes is noticed by PostgreSQL's TCP keepalives (asked for on
  the connection, below) within about KEEPALIVE_BOUND_SECONDS, and the lock goes then;
- a leader that cannot reach PostgreSQL any more stops scheduling as soon as its own check
  fails (every LEADER_CHECK_SECONDS, bounded by tcp_user_timeout), because by then it may
  no longer hold the lock.

The lock needs a session, so the connection must reach PostgreSQL directly, never through
PgBouncer in transaction mode (KIBO_BEAT_LOCK_DATABASE_URL). Every periodic task stays
safe if it runs twice anyway (a handover may send one entry twice): each takes its rows
under a lock or a compare-and-set.
"""

import logging
import time

import psycopg
from celery.beat import PersistentScheduler
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# pg_try_advisory_lock(classid, objid): "kibo" and "beat" in ASCII, apart from any lock the
# services take (those are transaction-level and keyed by hashtext()).
LOCK_KEY = (0x6B69626F, 0x62656174)
LEADER_CHECK_SECONDS = 1.0
# PostgreSQL notices a vanished client after idle + interval * count seconds.
KEEPALIVES = {"idle": 5, "interval": 2, "count": 3}
KEEPALIVE_BOUND_SECONDS = KEEPALIVES["idle"] + KEEPALIVES["interval"] * KEEPALIVES["count"]


class Leadership:
    """The beat leader lock, held by one connection of this process while it leads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: psycopg.Connection | None = None
        self._leading = False
        self._checked_at = 0.0

    def _connect(self) -> psycopg.Connection:
        server_keepalives = " ".join(
            f"-c tcp_keepalives_{name}={value}" for name, value in KEEPALIVES.items()
        )
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=5,
            application_name="kibo-beat",
            # the client's side of the same: a dead server fails the check within seconds
            keepalives=1,
            keepalives_idle=KEEPALIVES["idle"],
            keepalives_interval=KEEPALIVES["interval"],
            keepalives_count=KEEPALIVES["count"],
            tcp_user_timeout=KEEPALIVE_BOUND_SECONDS * 1000,
            options=server_keepalives,
        )

    def held(self) -> bool:
        """Whether this process leads now: it holds the lock, or has just taken it."""
        try:
            if self._leading:
                return self._still_held()
            if self._connection is None or self._connection.closed:
                self._connection = self._connect()
            row = self._connection.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY
            ).fetchone()
        except psycopg.Error as error:
            self._lost(f"PostgreSQL cannot be reached ({type(error).__name__})")
            return False
        if row and row[0]:
            self._leading, self._checked_at = True, time.monotonic()
            logger.warning("beat leads: it holds the scheduler lock and sends periodic tasks")
        return self._leading

    def _still_held(self) -> bool:
        if time.monotonic() - self._checked_at < LEADER_CHECK_SECONDS:
            return True
        assert self._connection is not None
        self._connection.execute("SELECT 1")  # the session, and so its lock, is alive
        self._checked_at = time.monotonic()
        return True

    def _lost(self, why: str) -> None:
        if self._leading:
            logger.error("beat stops leading: %s; it may no longer hold the lock", why)
        self._leading = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # the session ends, and its lock with it
            self._connection = None
        self._leading = False


def lock_database_url() -> str:
    """A direct connection to PostgreSQL for the leader lock (README: Deploy)."""
    if settings.KIBO_BEAT_LOCK_DATABASE_URL:
        return settings.KIBO_BEAT_LOCK_DATABASE_URL
    if settings.KIBO_DB_PGBOUNCER:
        raise ImproperlyConfigured(
            "Beat's leader lock is a session lock: with KIBO_DB_PGBOUNCER, set "
            "KIBO_BEAT_LOCK_DATABASE_URL to PostgreSQL itself, not to PgBouncer."
        )
    return settings.DATABASE_URL


class LeaderScheduler(PersistentScheduler):
    """Celery's own scheduler, ticking only while this beat holds the leader lock."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self.leadership = Leadership(lock_database_url())
        logger.warning("beat started: waits for the scheduler lock before sending anything")

    def tick(self, *args, **kwargs) -> float:
        if not self.leadership.held():
            return settings.KIBO_BEAT_LEADER_POLL_SECONDS
        return min(super().tick(*args, **kwargs), LEADER_CHECK_SECONDS)

    def close(self) -> None:
        self.leadership.release()
        super().close()
