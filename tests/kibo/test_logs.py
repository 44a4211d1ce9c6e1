"""Log lines that follow an order through web, worker and chain (kibo.logs), and never hold
a secret."""

import base64
import gzip
import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from django.test import Client

from escrow.models import Transfer
from kibo.env import BASE_DIR
from kibo.logs import ContextFilter, JsonLinesFormatter, TextFormatter, bound, scrub
from tests.factories import make_ally, make_order, make_user, png_upload
from tests.helpers.auth import prepared, sign, sign_in
from tests.helpers.chain import funded_wallet
from tests.helpers.money import pay
from tests.helpers.processes import wait_for, worker_env

SIGNATURE = "0x" + "ab" * 65
TX_HASH = "0x" + "cd" * 32
ESCROW_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's #0


@pytest.fixture
def lines():
    """What the root logger writes as JSON lines while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_secrets_are_scrubbed_and_transaction_hashes_kept(monkeypatch):
    monkeypatch.setenv("KIBO_ESCROW_PRIVATE_KEY", ESCROW_KEY)
    text = (
        f"key {ESCROW_KEY} bare {ESCROW_KEY[2:].upper()} sig {SIGNATURE} tx {TX_HASH} "
        "Cookie: sessionid=abc123def456; csrftoken=zzz Authorization: Bearer t0ken"
    )
    scrubbed = scrub(text)
    assert ESCROW_KEY[2:].lower() not in scrubbed.lower()
    assert SIGNATURE not in scrubbed and "abc123def456" not in scrubbed
    assert "zzz" not in scrubbed and "t0ken" not in scrubbed
    assert TX_HASH in scrubbed  # a transaction hash is what an operator greps for


def test_a_line_carries_what_is_in_play_as_json_and_as_text(lines):
    record = logging.LogRecord("kibo.test", logging.INFO, __file__, 1, "sent %s", (TX_HASH,), None)
    with bound(request_id="req-12345678", order_id="o-1", transfer_id="t-1"):
        ContextFilter().filter(record)
    as_json = json.loads(JsonLinesFormatter().format(record))
    assert as_json["event"] == f"sent {TX_HASH}" and as_json["level"] == "INFO"
    assert as_json["request_id"] == "req-12345678" and as_json["order_id"] == "o-1"
    assert "wallet" not in as_json and "time" in as_json  # nothing in play is left out
    assert (
        TextFormatter()
        .format(record)
        .endswith("request_id=req-12345678 order_id=o-1 transfer_id=t-1")
    )


@pytest.mark.django_db(transaction=True)
def test_a_request_has_an_id_that_its_lines_and_its_answer_carry(client, lines):
    order = make_order()
    client.force_login(order.user)

    response = client.post(f"/orders/{order.pk}/cancel/", HTTP_X_REQUEST_ID="proxy-id-0001")
    given = client.get("/livez/", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert response["X-Request-ID"] == "proxy-id-0001"
    assert re.fullmatch(r"[0-9a-f]{32}", given["X-Request-ID"])  # a new one, not the bad one
    moved = [line for line in lines() if line["event"] == "order PENDING_PAYMENT -> EXPIRED"]
    assert len(moved) == 1
    assert moved[0]["request_id"] == "proxy-id-0001" and moved[0]["order_id"] == str(order.pk)
    wallet = order.user.wallet_address
    assert moved[0]["wallet"] == f"{wallet[:6]}…{wallet[-4:]}"


@pytest.mark.slow  # a real worker pays on the chain
@pytest.mark.usefixtures("chain")
@pytest.mark.django_db(transaction=True)
def test_one_request_id_finds_web_worker_and_chain_and_no_secret_is_logged(
    celery_worker, lines, tmp_path
):
    # given a worker logging JSON lines, as in production, with the escrow wallet's key
    worker_log = tmp_path / "worker.log"
    worker = celery_worker(output=worker_log, KIBO_LOG_FORMAT="json", KIBO_LOG_LEVEL="INFO")
    key = os.environ["KIBO_ESCROW_PRIVATE_KEY"]

    # when a payer signs in and pays, an ally signs in, takes the order and sends a
    # receipt, and the payer says the shop was paid
    payer_wallet, ally_wallet = funded_wallet(), funded_wallet()
    payer, ally = Client(HTTP_HX_REQUEST="true"), Client()
    payer_user = make_user(address=payer_wallet.address)
    make_ally(address=ally_wallet.address)
    signatures, sessions = [], []
    for browser, account in ((payer, payer_wallet), (ally, ally_wallet)):
        message = prepared(browser, account)
        signatures.append(sign(account, message))
        assert sign_in(browser, account, message, signatures[-1]).status_code == 200
        sessions.append(browser.cookies["sessionid"].value)
    order = make_order(user=payer_user, token="USDT")
    _, paid = pay(payer, order, payer_wallet)
    assert paid.status_code == 200
    ally.post(f"/ally/orders/{order.pk}/take/")
    upload = png_upload()
    receipt = upload.read()
    upload.seek(0)
    ally.post(f"/ally/orders/{order.pk}/proof/", {"proof": upload})
    confirmed = payer.post(f"/orders/{order.pk}/confirm/")
    request_id = confirmed["X-Request-ID"]
    release = Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)
    assert wait_for(
        lambda: Transfer.objects.get(pk=release.pk).status == Transfer.Status.CONFIRMED,
        seconds=60,
    ), Transfer.objects.get(pk=release.pk).last_error
    release.refresh_from_db()
    assert wait_for(lambda: release.mined_tx_hash in worker_log.read_text(), seconds=10), (
        worker_log.read_text()[-3000:]
    )
    assert worker.poll() is None

    # then one grep of the confirming request's id shows the web, the worker and the chain
    web = [line for line in lines() if line.get("request_id") == request_id]
    worker_lines = [
        json.loads(text)
        for text in worker_log.read_text().splitlines()
        if text.startswith("{") and request_id in text
    ]
    assert any("released from its hold by the payer" in line["event"] for line in web)
    events = " | ".join(line["event"] for line in worker_lines)
    assert "RELEASE transfer signed at nonce" in events, events
    assert "transfer confirmed in block" in events and release.mined_tx_hash in events
    assert {line.get("order_id") for line in worker_lines} == {str(order.pk)}, worker_lines
    assert {line["transfer_id"] for line in worker_lines} == {str(release.pk)}
    assert all(line.get("task_id") for line in worker_lines)

    # and no line, web or worker, holds the key, a session, a signature or the receipt
    everything = json.dumps(lines()) + worker_log.read_text()
    sessions += [browser.cookies["sessionid"].value for browser in (payer, ally)]
    for secret in [key, key.removeprefix("0x"), *sessions, *signatures]:
        assert secret.lower() not in everything.lower()
    for chunk in (receipt[100:132].hex(), base64.b64encode(receipt[100:148]).decode()):
        assert chunk not in everything


SENTRY_SCRIPT = """
import logging, os, django
django.setup()
import sentry_sdk
from kibo import logs
print("active", sentry_sdk.get_client().is_active())
with logs.bound(request_id="req-sentry-0001", order_id="order-9"):
    logging.getLogger("kibo.test").error(
        "payout failed: signature %s, sessionid=%s, key %s",
        os.environ["SIG"], "s3ss10nk3yvalue", os.environ["KIBO_ESCROW_PRIVATE_KEY"],
    )
sentry_sdk.flush(5)
"""


def run_with_sentry(dsn: str | None) -> str:
    env = worker_env(SENTRY_DSN=dsn, SIG=SIGNATURE, KIBO_ESCROW_PRIVATE_KEY=ESCROW_KEY)
    run = subprocess.run(
        [sys.executable, "-c", SENTRY_SCRIPT],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout + run.stderr


def test_errors_reach_sentry_scrubbed_when_a_dsn_is_set_and_nowhere_else(httpserver):
    httpserver.expect_request("/api/1/envelope/").respond_with_data("{}")

    output = run_with_sentry(None)
    assert "active False" in output and not httpserver.log

    output = run_with_sentry(f"http://publickey@127.0.0.1:{httpserver.port}/1")
    assert "active True" in output
    bodies = [
        gzip.decompress(request.data) if request.headers.get("Content-Encoding") == "gzip"
        else request.data
        for request, _ in httpserver.log
    ]  # fmt: skip
    sent = b"".join(bodies).decode()
    assert "payout failed" in sent and "req-sentry-0001" in sent and "order-9" in sent
    for secret in (SIGNATURE, "s3ss10nk3yvalue", ESCROW_KEY, ESCROW_KEY[2:]):
        assert secret not in sent
    assert SIGNATURE not in output and ESCROW_KEY[2:] not in output  # the console line too
