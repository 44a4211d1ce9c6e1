"""/metrics: HTTP requests per route, for a scraper with the token, added up across
gunicorn's workers."""

import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.embedded import free_port
from kibo.env import BASE_DIR
from orders.tasks import expire_due_orders
from tests.factories import make_order
from tests.helpers.processes import wait_for, worker_env

TOKEN = "scrape-me-9f2c1b7e"


def _samples(text: str, name: str) -> dict[tuple, float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_metrics_are_not_public(client, settings):
    settings.KIBO_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404  # no token configured: not there
    settings.KIBO_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_requests_are_counted_by_route_name_never_by_path(client, settings):
    settings.KIBO_METRICS_TOKEN = TOKEN
    order = make_order()
    client.force_login(order.user)
    before = _samples(
        client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode(),
        "kibo_http_requests_total",
    )
    client.get(f"/orders/{order.pk}/")
    client.get("/orders/00000000-0000-0000-0000-000000000000/")

    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    after = _samples(text, "kibo_http_requests_total")
    seen = {"method": "GET", "route": "orders:detail", "status": "200"}
    missing = {"method": "GET", "route": "orders:detail", "status": "404"}
    for labels in (seen, missing):
        key = tuple(sorted(labels.items()))
        assert after[key] - before.get(key, 0) == 1
    assert str(order.pk) not in text  # no series per order
    assert 'kibo_http_request_duration_seconds_bucket{le="0.1",route="orders:detail"}' in text


@pytest.mark.slow  # starts gunicorn
@pytest.mark.django_db
def test_under_gunicorn_every_workers_requests_add_up(tmp_path):
    # given a metrics directory holding an earlier run's file
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_99999.db").write_bytes(b"stale")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "kibo.wsgi:application", "-c",
         str(BASE_DIR / "deploy" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
         "--workers", "3", "--log-level", "warning"],
        cwd=BASE_DIR,
        env=worker_env(PROMETHEUS_MULTIPROC_DIR=str(directory), KIBO_METRICS_TOKEN=TOKEN),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/livez/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert not (directory / "counter_99999.db").exists()  # emptied on start
        livez = tuple(sorted({"method": "GET", "route": "livez", "status": "200"}.items()))

        def scraped() -> float:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            text = httpx.get(f"{base}/metrics", headers=auth).text
            return _samples(text, "kibo_http_requests_total").get(livez, 0)

        before = scraped()
        # when forty requests reach whichever workers take them, on fresh connections
        for _ in range(40):
            httpx.get(f"{base}/livez/", headers={"Connection": "close"})

        # then the scrape adds every worker's up
        assert scraped() - before == 40
        assert len(list(directory.glob("counter_*.db"))) >= 2  # more than one worker counted
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow  # starts a worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_serves_its_pools_task_figures_on_its_own_port(celery_worker, tmp_path):
    # given a worker of two pool processes, its metrics directory holding an old run's file
    directory = tmp_path / "worker-metrics"
    directory.mkdir()
    (directory / "counter_99999.db").write_bytes(b"stale")
    port = free_port()
    worker = celery_worker(
        concurrency=2,
        KIBO_WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(directory),
    )
    ran = {"task": "orders.tasks.expire_due_orders", "queue": "sweeps", "outcome": "success"}

    def runs() -> float:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return -1
        return _samples(text, "kibo_celery_task_runs_total").get(tuple(sorted(ran.items())), 0)

    assert wait_for(lambda: runs() >= 0, seconds=60), "the worker serves no metrics"
    assert not (directory / "counter_99999.db").exists()  # emptied on start

    # when six sweeps go through the broker
    for _ in range(6):
        expire_due_orders.delay()

    # then the port shows all six, whichever pool process ran them
    assert wait_for(lambda: runs() == 6, seconds=60), runs()
    assert worker.poll() is None
