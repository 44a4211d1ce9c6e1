"""A real Prometheus (Debian's package) scrapes a running Kibo with the token, sees an
order's payment move its figures, and raises an alert for a transfer left unconfirmed."""

import shutil
import subprocess
from datetime import timedelta

import httpx
import pytest
import yaml
from django.utils import timezone
from prometheus_client import REGISTRY

from devtools.embedded import free_port
from escrow.models import SignedTransaction, Transfer
from escrow.transfers import transfer_process
from kibo.env import BASE_DIR
from tests.factories import make_paid_order
from tests.helpers.money import completed_order
from tests.helpers.networks import change_local_network
from tests.helpers.processes import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("chain")]  # starts Prometheus
TOKEN = "prometheus-scrapes-9c1e"


@pytest.fixture
def prometheus(live_server, settings, tmp_path):
    """Prometheus scraping this test's Kibo every second with Kibo's alerts loaded; yields a
    function that runs a PromQL query and one that lists the firing alerts."""
    settings.KIBO_METRICS_TOKEN = TOKEN
    target = live_server.url.split("//", 1)[1]
    jobs = [("kibo-web", "/metrics"), ("kibo-business", "/metrics/business")]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(BASE_DIR / "deploy" / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                "authorization": {"credentials": TOKEN},
                "static_configs": [{"targets": [target]}],
            }
            for job, path in jobs
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    executable = shutil.which("prometheus")
    assert executable, "prometheus is missing: `make test` installs Debian's package"
    server = subprocess.Popen(
        [
            executable,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(promql: str) -> float | None:
        answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}).json()
        results = answer["data"]["result"]
        return float(results[0]["value"][1]) if results else None

    def firing() -> dict[str, dict]:
        alerts = httpx.get(f"{base}/api/v1/alerts").json()["data"]["alerts"]
        return {a["labels"]["alertname"]: a for a in alerts if a["state"] == "firing"}

    try:
        assert wait_for(ready, seconds=30), server.stderr.read1().decode()
        up = 'min(up{job=~"kibo-.*"})'
        assert wait_for(lambda: query(up) == 1, seconds=30), "Prometheus cannot scrape Kibo"
        yield query, firing
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_prometheus_sees_a_payment_and_alerts_on_a_transfer_left_unconfirmed(prometheus, settings):
    query, firing = prometheus
    waiting = 'sum(kibo_orders_open{status="AVAILABLE"})'
    paid = 'sum(kibo_order_transitions_total{to_status="AVAILABLE"})'
    assert wait_for(lambda: query(waiting) == 0, seconds=15)
    counted = {"from_status": "PENDING_PAYMENT", "to_status": "AVAILABLE"}
    paid_before = REGISTRY.get_sample_value("kibo_order_transitions_total", counted) or 0

    # when an order is paid
    make_paid_order()

    # then the scraped figures move: one more order waiting, one more counted as paid
    assert wait_for(lambda: query(waiting) == 1, seconds=15), query(waiting)
    assert wait_for(lambda: query(paid) == paid_before + 1, seconds=15), (query(paid), paid_before)
    assert "KiboTransferUnconfirmed" not in firing()

    # when a payout is signed and sent, and eleven minutes later the chain has not settled it
    _, _, release = completed_order()
    change_local_network(settings, confirmations=50)
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.SIGNED
    SignedTransaction.objects.filter(transfer=release).update(
        created_at=timezone.now() - timedelta(minutes=11)
    )

    # then Prometheus raises the alert, naming the network
    assert wait_for(lambda: "KiboTransferUnconfirmed" in firing(), seconds=20), firing()
    alert = firing()["KiboTransferUnconfirmed"]
    assert alert["labels"] == {
        "alertname": "KiboTransferUnconfirmed",
        "network": "local",
        "severity": "page",
    }
