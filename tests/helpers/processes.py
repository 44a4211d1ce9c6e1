"""Waiting for what other processes do, and starting Celery workers on the test database."""

import os
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from django.db import connection


def wait_for(condition, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def worker_database_url(url: str | None = None) -> str:
    """DATABASE_URL (or `url`), pointed at the database pytest-django made for this session."""
    parts = urlsplit(url or os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def direct_database_url() -> str:
    """PostgreSQL itself, even when the suite runs through PgBouncer (beat's leader lock)."""
    return worker_database_url(os.environ.get("KIBO_EMBEDDED_POSTGRES_URL"))


def worker_command(*options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "kibo",
        "worker",
        *options,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def worker_env(**changes) -> dict[str, str]:
    """The environment of a worker on the test database; a change to None removes the name."""
    env = {
        **os.environ,
        "KIBO_LOG_LEVEL": "WARNING",  # what the test's output needs of a worker
        "DATABASE_URL": worker_database_url(),
        "KIBO_BEAT_LOCK_DATABASE_URL": direct_database_url(),
        "KIBO_BROKER_HEARTBEAT_SECONDS": "2",  # a stopped worker leaves within a second
        "DJANGO_SETTINGS_MODULE": "kibo.settings.test",
        **changes,
    }
    return {name: value for name, value in env.items() if value is not None}
