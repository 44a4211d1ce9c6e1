"""The session's streaming replica as Django's `replica` connection, for one test."""

import time
from contextlib import contextmanager

from django.db import connections
from django.db.utils import load_backend

from devtools.embedded import Replica
from kibo.env import env
from kibo.replica import PRIMARY, REPLICA


class ReplicaInTest:
    """The `replica` connection (the test database, on the replica) while a test runs, as
    DATABASE_REPLICA_URL makes it in production; made here, as Django's tests allow a
    connection made during a test."""

    def __init__(self, server: Replica, settings):
        self.server = server
        self.settings = settings

    def __enter__(self):
        primary = connections[PRIMARY].settings_dict
        self.settings.DATABASE_REPLICA_URL = self.server.url(primary["NAME"])
        direct = env.db_url_config(self.settings.DATABASE_REPLICA_URL)
        config = {
            **primary,
            **direct,
            "OPTIONS": {**direct.get("OPTIONS", {}), "connect_timeout": 2},
            "CONN_MAX_AGE": 0,
        }
        connections[REPLICA] = load_backend(config["ENGINE"]).DatabaseWrapper(config, REPLICA)
        return self

    def __exit__(self, *exc):
        connections[REPLICA].close()
        del connections[REPLICA]

    def _replica_sql(self, sql: str, *params):
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def caught_up(self, seconds: float = 10) -> None:
        """Wait until the replica has replayed everything committed on the primary so far."""
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            (target,) = cursor.fetchone()
        deadline = time.monotonic() + seconds
        while not self._replica_sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target):
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.02)

    @contextmanager
    def paused(self):
        """The replica receives the primary's changes but does not apply them."""
        self.caught_up()
        self._replica_sql("SELECT pg_wal_replay_pause()::text")
        try:
            yield
        finally:
            self._replica_sql("SELECT pg_wal_replay_resume()::text")

    @contextmanager
    def stopped(self):
        self.server.stop()
        try:
            yield
        finally:
            self.server.start()
            connections[REPLICA].close()
