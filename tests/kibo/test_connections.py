"""How processes reach PostgreSQL: directly, through Django's psycopg pool, or through
PgBouncer (`make test` runs the money tests through a real one: KIBO_DB_PGBOUNCER=1)."""

import subprocess
import sys

import pytest

from kibo.env import BASE_DIR
from tests.helpers.processes import direct_database_url, worker_env

pytestmark = pytest.mark.slow  # a Python process per test

# Twelve threads, each taking a connection, asking for its server process, and giving it back.
THREADS = """
import threading, django
django.setup()
from django.db import connection
pids = set()
def work():
    for _ in range(5):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.add(cursor.fetchone()[0])
        connection.close()  # back to the pool, or closed
threads = [threading.Thread(target=work) for _ in range(12)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(pids), connection.pool is not None)
if len(pids) == 0: raise SystemExit("no thread connected")
"""


def run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=worker_env(DATABASE_URL=direct_database_url(), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_a_pooled_process_reuses_at_most_its_pool_size_of_connections():
    # when twelve threads of a process with a pool of three each connect five times
    result = run(THREADS, KIBO_DB_POOL="3", KIBO_DB_PGBOUNCER=None)
    # then they shared three server connections at most
    assert result.returncode == 0, result.stderr
    distinct, pooled = result.stdout.split()
    assert pooled == "True"
    assert 1 <= int(distinct) <= 3


@pytest.mark.django_db
def test_without_a_pool_each_connection_is_a_new_server_process():
    result = run(THREADS, KIBO_DB_POOL=None, KIBO_DB_PGBOUNCER=None)
    assert result.returncode == 0, result.stderr
    distinct, pooled = result.stdout.split()
    assert pooled == "False"
    assert int(distinct) > 3


def test_one_pool_at_a_time():
    result = run("import django; django.setup()", KIBO_DB_POOL="3", KIBO_DB_PGBOUNCER="1")
    assert result.returncode != 0
    assert "Choose one pool" in result.stderr


def test_through_pgbouncer_nothing_outlives_a_transaction(settings):
    # PgBouncer's settings, read where every connection is made
    code = (
        "import django; django.setup(); from django.conf import settings;"
        " d = settings.DATABASES['default'];"
        " print(d['DISABLE_SERVER_SIDE_CURSORS'], d['OPTIONS']['prepare_threshold'])"
    )
    result = run(code, KIBO_DB_POOL=None, KIBO_DB_PGBOUNCER="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "None"]
