import importlib
import os
import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import translation

from devtools.embedded import STATE_DIR, free_port, pgbouncer_admin, start_replica
from kibo.env import BASE_DIR
from tests.helpers.fake_telegram import FakeTelegram
from tests.helpers.networks import change_local_network
from tests.helpers.processes import worker_command, worker_env
from tests.helpers.push_service import PushService
from tests.helpers.replica import ReplicaInTest

SEED_MIGRATIONS = [
    importlib.import_module("kibo.migrations.0002_seed_system_config"),
    importlib.import_module("kibo.migrations.0003_treasury_addresses"),
    importlib.import_module("kibo.migrations.0005_release_hold"),
    importlib.import_module("kibo.migrations.0006_release_hold_ten_minutes"),
    importlib.import_module("orders.migrations.0006_dispute_config"),
    importlib.import_module("quotes.migrations.0002_local_rates_and_sources"),
    importlib.import_module("escrow.migrations.0005_reconcile_stuck_minutes"),
    importlib.import_module("kibo.migrations.0008_new_ally_hold_and_return_minimums"),
    importlib.import_module("kibo.migrations.0009_quote_cross_check"),
    importlib.import_module("kibo.migrations.0013_audit_retention"),
]
# What a later migration took back out of the seed.
UNSEEDED = [importlib.import_module("kibo.migrations.0007_escrow_address_from_the_environment")]


WORKER_FIXTURES = {"celery_worker", "celery_beat"}


def pytest_collection_modifyitems(items):
    """Tests that start real workers or beats are marked `workers`: `make test` runs them
    again against RabbitMQ. The browser tests run them too, but against one broker."""
    browsers = BASE_DIR / "tests" / "e2e"
    for item in items:
        if WORKER_FIXTURES & set(item.fixturenames) and browsers not in item.path.parents:
            item.add_marker(pytest.mark.workers)


def pytest_report_header():
    transport = django_settings.CELERY_BROKER_URL.split("://")[0]
    pool = "PgBouncer" if django_settings.KIBO_DB_PGBOUNCER else "direct"
    return f"broker: {transport}; database connections: {pool}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, dropped at the end; through PgBouncer only once PgBouncer has let go
    of its server connections to it (PostgreSQL refuses to drop a database in use)."""
    yield
    if django_settings.KIBO_DB_PGBOUNCER:
        with django_db_blocker.unblock():
            name = connection.settings_dict["NAME"]
            connection.close()
            pgbouncer_admin(os.environ["DATABASE_URL"], f"KILL {name}")


@pytest.fixture(scope="session")
def streaming_replica():
    """A streaming replica of the embedded PostgreSQL, made when a test first asks for it."""
    primary = os.environ.get("KIBO_EMBEDDED_POSTGRES_URL")
    if not primary:
        pytest.skip("the replica streams from the embedded PostgreSQL; DATABASE_URL is set")
    with ExitStack() as stack:
        yield start_replica(stack, STATE_DIR / "test-replica", primary)


@pytest.fixture
def replica(streaming_replica, transactional_db, settings):
    """Django's `replica` connection to the test database on the replica, for a test whose
    rows are committed (and so stream to it)."""
    with ReplicaInTest(streaming_replica, settings) as replica:
        yield replica


@pytest.fixture(autouse=True)
def _english():
    """The suite asserts English messages; Spanish, the default, has tests of its own that
    ask for it (a Client without Accept-Language, or translation.override("es"))."""
    with translation.override("en"):
        yield


@pytest.fixture
def client():
    """A browser whose language is English (see _english)."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Config is cached in Redis; a rolled-back test must not leak its values to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _seeded_config(request):
    """Transactional tests start from a flushed database: put back what migrations seed."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        for migration in SEED_MIGRATIONS:
            migration.seed(apps, None)
        for migration in UNSEEDED:
            migration.forget(apps, None)


@pytest.fixture
def chain():
    """The local chain, put back as it was after the test (like the database's rollback)."""
    from tests.helpers.chain import rpc

    snapshot = rpc("evm_snapshot")
    yield
    rpc("evm_revert", snapshot)


MAINNET_CONFIRMATIONS = 3
MAINNET_BLOCK_SECONDS = 0.2


@pytest.fixture(params=["instant", pytest.param("mainnet", marks=pytest.mark.slow)])
def pace(request, chain, settings, monkeypatch):
    """How the chain runs, for the tests that must hold at both paces: `instant` mines each
    transaction at once and one block confirms it; `mainnet` mines a block every 0.2 s and
    waits for 3 confirmations, like Base or Mantle, so transfers sent a moment apart overlap.
    Worker processes started by the test inherit the confirmations from the environment."""
    if request.param == "instant":
        yield request.param
        return
    change_local_network(settings, confirmations=MAINNET_CONFIRMATIONS)
    monkeypatch.setenv("KIBO_CONFIRMATIONS_LOCAL", str(MAINNET_CONFIRMATIONS))
    from tests.helpers.chain import IntervalMiner

    with IntervalMiner(MAINNET_BLOCK_SECONDS):
        yield request.param


@pytest.fixture
def admin_user(db):
    """Staff sign in to the admin with a username; their identity is still a wallet."""
    from kibo.models import User
    from tests.factories import wallet

    return User.objects.create_superuser(wallet(), password="staff-password", username="staff")


@pytest.fixture
def celery_worker():
    """Start real Celery worker processes on the test database and broker; stop them after.

    The queue is emptied first, so messages other tests enqueued do not reach this worker.
    """
    from kibo.celery import app

    app.control.purge()
    workers: list[subprocess.Popen] = []

    def start(
        *,
        failpoint: str | None = None,
        concurrency: int = 1,
        queues: str | None = None,  # as a deployed worker's -Q (else every queue)
        output: Path | None = None,  # where its stdout and stderr go (else the test's)
        **env: str,
    ) -> subprocess.Popen:
        pool = ["--pool", "solo"] if concurrency == 1 else ["--concurrency", str(concurrency)]
        # Each its own name, as on its own machine (RabbitMQ gives each name one mailbox).
        pool += ["--hostname", f"worker{len(workers) + 1}@%h"]
        if queues:
            pool += ["--queues", queues]
        log = output.open("wb") if output else None
        worker = subprocess.Popen(
            worker_command(*pool),
            cwd=BASE_DIR,
            env=worker_env(KIBO_FAILPOINT=failpoint, **env),
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
        )
        if log:
            log.close()  # the worker has its own copy
        workers.append(worker)
        return worker

    yield start
    for worker in workers:  # all told at once: each finishes its task and its broker's wait
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)


@pytest.fixture
def celery_beat(tmp_path):
    """Start a real Celery beat on the test database and broker, its chain and expiry sweeps
    every half second (quotes are left alone); stop it after. Each beat started keeps its own
    schedule file, as on its own machine."""
    beats: list[subprocess.Popen] = []

    def start(*, output: Path | None = None, **env: str) -> subprocess.Popen:
        log = output.open("wb") if output else None
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "kibo",
                "beat",
                "--schedule",
                str(tmp_path / f"celerybeat-schedule-{len(beats)}"),
            ],
            cwd=BASE_DIR,
            env=worker_env(
                KIBO_CHAIN_SWEEP_SECONDS="0.5",
                KIBO_ORDER_SWEEP_SECONDS="0.5",
                KIBO_QUOTE_TICK_SECONDS="3600",
                **env,
            ),
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
        )
        if log:
            log.close()  # the beat has its own copy
        beats.append(beat)
        return beat

    yield start
    for beat in beats:
        if beat.poll() is None:
            beat.terminate()
            beat.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 HTTP server on a loopback port (moto's server mode), for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, settings):
    """Uploads go to a fresh private bucket on that server, as in production."""
    import boto3

    from kibo.settings.base import private_s3_storage

    credentials = {"access_key": "kibo-test", "secret_key": "kibo-test-secret"}
    bucket = f"kibo-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id=credentials["access_key"],
        aws_secret_access_key=credentials["secret_key"],
    )
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": private_s3_storage(
            bucket=bucket, region="us-east-1", endpoint_url=s3_server, **credentials
        ),
    }
    return client, bucket


@pytest.fixture(scope="session")
def _push_service_running():
    with PushService() as service:
        yield service


@pytest.fixture
def push_service(_push_service_running) -> PushService:
    """A Web Push service on a loopback port (tests/helpers/push_service.py), emptied for
    each test: it sees only its own subscriptions and messages."""
    _push_service_running.reset()
    return _push_service_running


@pytest.fixture(scope="session")
def _fake_telegram_running():
    with FakeTelegram() as telegram:
        yield telegram


@pytest.fixture
def fake_telegram(_fake_telegram_running) -> FakeTelegram:
    """The Telegram Bot API on a loopback port (tests/helpers/fake_telegram.py), emptied for
    each test: no chats, updates or sent messages but its own."""
    _fake_telegram_running.reset()
    return _fake_telegram_running
