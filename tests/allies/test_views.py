"""The ally's pages through the HTTP layer: apply, board, take, work, proof, stats, files."""

import json
import threading
from datetime import timedelta
from html import unescape

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allies.models import AllyApplication
from allies.services import ally_penalize
from kibo.formats import crypto_text as crypto
from kibo.models import User
from orders.models import LateProof, Order, OrderStatus
from orders.services import order_complete, order_expire
from tests.factories import (
    expire_timer,
    make_ally,
    make_order,
    make_paid_order,
    make_taken_order,
    make_user,
    pdf_receipt,
    png_upload,
    shop_qr,
    wallet,
)

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def ally(client):
    person = make_ally(country="BO")
    client.force_login(person)
    return person


# --- becoming an ally --------------------------------------------------------------------


def test_a_signed_in_wallet_applies_and_waits_for_approval(client):
    user = make_user()
    client.force_login(user)
    assert "Become an ally" in text(client.get("/ally/apply/"))

    response = client.post(
        "/ally/apply/", {"country": "BO", "display_name": "Ana", "bank": "BNB"}, follow=True
    )

    assert "waiting for approval" in text(response)
    assert AllyApplication.objects.get(user=user).status == "PENDING"
    assert client.get("/ally/").url == "/ally/apply/"  # not an ally until staff approve


def test_an_application_missing_its_bank_says_why(client):
    client.force_login(make_user())
    response = client.post("/ally/apply/", {"country": "BO", "display_name": "Ana", "bank": ""})
    assert response.status_code == 422 and "which bank" in text(response)
    assert not AllyApplication.objects.exists()


def test_the_ally_pages_send_the_signed_out_to_sign_in_and_hide_from_staff(client):
    for url in ("/ally/", "/ally/apply/", "/ally/stats/"):
        assert client.get(url).url.startswith("/auth/?next=")
    client.force_login(User.objects.create_superuser(wallet(), username="boss"))
    for url in ("/ally/", "/ally/apply/", "/ally/stats/", "/ally/board/"):
        assert client.get(url).status_code == 404


# --- the board ---------------------------------------------------------------------------


def test_the_board_lists_the_countrys_available_orders_oldest_first_without_the_qr(client, ally):
    older = make_paid_order(amount_fiat="100.00")
    newer = make_paid_order(amount_fiat="250.00")
    make_paid_order(fiat="MXN", amount_fiat="500.00")  # another country's
    make_order()  # not paid yet

    page = text(client.get("/ally/"))

    assert page.index(str(older.pk)) < page.index(str(newer.pk))
    assert "500,00 MXN" not in page and "500.00 MXN" not in page
    assert f"<strong>{crypto(older.payout_crypto)} USDT</strong>" in page  # the ally's payout
    assert older.qr_data not in page and "qr.png" not in page
    assert "2 orders to pay" in page


def test_the_board_poll_is_204_while_nothing_changed_and_cheap(client, ally):
    make_paid_order()
    first = client.get("/ally/board/")
    version = first.content.decode().split("?v=")[1].split('"')[0]
    with CaptureQueriesContext(connection) as poll:
        assert client.get(f"/ally/board/?v={version}").status_code == 204
    # the signed-in user; the queue and the ally's standing come from the cache
    assert len(poll) == 1, poll.captured_queries

    make_paid_order()

    changed = client.get(f"/ally/board/?v={version}")
    assert changed.status_code == 200 and "2 orders to pay" in text(changed)


def test_a_penalized_ally_sees_until_when_and_why_and_cannot_take(client, ally):
    make_paid_order()
    penalty = ally_penalize(ally=ally, order=None, reason="TIMEOUT", minutes=30)
    until = timezone.localtime(penalty.penalty_until).strftime("%H:%M")
    page = text(client.get("/ally/"))
    assert f"You are penalized until {until}: Did not upload proof in time." in page
    assert "Take: pay" not in page


def test_an_ally_working_an_order_is_pointed_to_it(client, ally):
    order = make_taken_order(ally=ally)
    make_paid_order()
    page = text(client.get("/ally/"))
    assert "You are paying an order." in page and f"/ally/orders/{order.pk}/" in page
    assert "Take: pay" not in page


def test_an_ally_not_approved_yet_sees_why_it_cannot_take(client):
    client.force_login(make_ally(verified=False))
    make_paid_order()
    page = text(client.get("/ally/"))
    assert "waiting for approval" in page and "Take: pay" not in page


# --- take --------------------------------------------------------------------------------


def test_taking_an_order_opens_it(client, ally):
    order = make_paid_order()
    response = client.post(f"/ally/orders/{order.pk}/take/")
    assert response.status_code == 302 and response.url == f"/ally/orders/{order.pk}/"
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN and order.ally == ally


def test_with_htmx_the_winner_is_sent_to_the_order(client, ally):
    order = make_paid_order()
    response = client.post(f"/ally/orders/{order.pk}/take/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == f"/ally/orders/{order.pk}/"


def test_with_htmx_the_loser_gets_409_and_the_board_refreshes(client, ally):
    order = make_taken_order()
    response = client.post(f"/ally/orders/{order.pk}/take/", HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "Another ally took this order." in text(response)
    assert json.loads(response["HX-Trigger"]) == {"board-refresh": {}}


def test_without_htmx_the_loser_is_told_on_the_board(client, ally):
    order = make_taken_order()
    response = client.post(f"/ally/orders/{order.pk}/take/", follow=True)
    assert "Another ally took this order." in text(response)


def test_an_ineligible_ally_gets_the_reason(client, ally):
    ally_penalize(ally=ally, order=None, reason="TIMEOUT", minutes=30)
    order = make_paid_order()
    response = client.post(f"/ally/orders/{order.pk}/take/", HTTP_HX_REQUEST="true")
    assert response.status_code == 409 and "penalized" in text(response)


def test_another_countrys_order_is_404(client, ally):
    order = make_paid_order(fiat="MXN", amount_fiat="500.00")
    assert client.post(f"/ally/orders/{order.pk}/take/").status_code == 404


@pytest.mark.slow  # threads racing, many rounds
@pytest.mark.django_db(transaction=True)
def test_two_allies_race_for_each_order_one_wins_one_gets_409():
    outcomes = []
    for _ in range(20):
        order = make_paid_order()
        browsers = []
        for _ in range(2):
            browser = Client(HTTP_ACCEPT_LANGUAGE="en")
            browser.force_login(make_ally())
            browsers.append(browser)
        start = threading.Barrier(2)
        codes = []

        def take(browser, order=order, start=start, codes=codes):
            try:
                start.wait()
                response = browser.post(f"/ally/orders/{order.pk}/take/", HTTP_HX_REQUEST="true")
                codes.append(response.status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=take, args=(b,)) for b in browsers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes.append(sorted(codes))
    assert outcomes == [[204, 409]] * 20
    assert Order.objects.filter(status=OrderStatus.TAKEN).count() == 20


# --- working an order --------------------------------------------------------------------


def test_the_assigned_ally_sees_the_qr_to_pay_and_what_it_says(client, ally):
    qr = shop_qr("BOB", amount="100.00", merchant="Farmacia Sucre")
    order = make_taken_order(ally=ally, qr_data=qr, amount_fiat="100.00")
    page = text(client.get(f"/ally/orders/{order.pk}/"))
    assert 'src="data:image/svg+xml' in page
    assert "Farmacia Sucre" in page and "100.00 BOB" in page
    assert f"/orders/{order.pk}/qr.png" in page


def test_someone_elses_order_is_404_to_an_ally(client, ally):
    order = make_taken_order()
    assert client.get(f"/ally/orders/{order.pk}/").status_code == 404
    assert (
        client.post(f"/ally/orders/{order.pk}/proof/", {"proof": png_upload()}).status_code == 404
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN


def test_a_valid_receipt_completes_the_order(client, ally, django_capture_on_commit_callbacks):
    order = make_taken_order(ally=ally)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/ally/orders/{order.pk}/proof/", {"proof": png_upload()})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    page = text(client.get(response.url))
    assert "Done: the QR is paid." in page


def _pdf() -> bytes:
    return pdf_receipt()


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (lambda: SimpleUploadedFile("r.png", _pdf()), "named .png but it is a PDF"),
        (lambda: SimpleUploadedFile("r.png", b"<html><body>paid</body></html>"), "PNG, JPEG"),
        (lambda: SimpleUploadedFile("r.png", b""), "empty"),
        (lambda: SimpleUploadedFile("r.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024)), "too large"),
    ],
)
def test_a_bad_receipt_is_422_with_the_reason_and_changes_nothing(client, ally, upload, reason):
    order = make_taken_order(ally=ally)
    stored = _stored()
    response = client.post(
        f"/ally/orders/{order.pk}/proof/", {"proof": upload()}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422 and reason in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN and not order.proof_file
    assert _stored() == stored


def _stored() -> set[str]:
    return set(default_storage.listdir("proofs")[1]) if default_storage.exists("proofs") else set()


def test_a_reused_receipt_is_422(client, ally, django_capture_on_commit_callbacks):
    receipt = png_upload()
    earlier = make_taken_order()
    with django_capture_on_commit_callbacks(execute=False):
        order_complete(order_id=earlier.pk, ally=earlier.ally, proof=receipt)
    order = make_taken_order(ally=ally)
    receipt.seek(0)
    response = client.post(f"/ally/orders/{order.pk}/proof/", {"proof": receipt})
    assert response.status_code == 422 and "already used for another order" in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN


def test_a_receipt_for_an_expired_order_is_422_and_kept_for_staff(client, ally):
    order = make_taken_order(ally=ally)
    expire_timer(order)
    order_expire(order_id=order.pk)
    response = client.post(f"/ally/orders/{order.pk}/proof/", {"proof": png_upload()})
    assert response.status_code == 422 and "kept the receipt" in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert LateProof.objects.filter(order=order, ally=ally).count() == 1


# --- private files -----------------------------------------------------------------------


@pytest.fixture
def finished(django_capture_on_commit_callbacks):
    order = make_taken_order()
    with django_capture_on_commit_callbacks(execute=False):
        order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    order.refresh_from_db()
    return order


@pytest.mark.parametrize("path", ["qr.png", "proof/"])
@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("user", 200),
        ("assigned ally", 200),
        ("staff", 200),
        ("other ally", 404),
        ("other user", 404),
        ("signed out", 302),
    ],
)
def test_private_files_for_every_role(client, finished, path, who, status):
    person = {
        "user": finished.user,
        "assigned ally": finished.ally,
        "staff": User.objects.create_superuser(wallet(), username="boss"),
        "other ally": make_ally(),
        "other user": make_user(),
        "signed out": None,
    }[who]
    if person is not None:
        client.force_login(person)
    response = client.get(f"/orders/{finished.pk}/{path}")
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, no-store"


# --- stats -------------------------------------------------------------------------------


def test_stats_show_the_record_and_a_chart_of_the_last_14_days(
    client, ally, django_capture_on_commit_callbacks
):
    for _ in range(2):
        order = make_taken_order(ally=ally)
        with django_capture_on_commit_callbacks(execute=False):
            order_complete(order_id=order.pk, ally=ally, proof=png_upload())
    expired = make_taken_order(ally=ally)
    expire_timer(expired)
    order_expire(order_id=expired.pk)
    Order.objects.filter(pk=expired.pk).update(created_at=timezone.now() - timedelta(days=1))

    page = text(client.get("/ally/stats/"))

    assert "Orders taken</dt><dd>3" in page
    assert "Completed</dt><dd>2" in page
    assert "Success rate</dt><dd>66.7 %" in page
    assert "Penalties</dt><dd>1" in page
    assert page.count("<rect ") == 14
    assert ": 2</title>" in page


def test_the_board_costs_the_same_few_queries_for_many_orders(
    client, ally, django_assert_max_num_queries
):
    for _ in range(12):
        make_paid_order()
    # session, user, orders, penalty, working, a dispute to answer, the switch and working
    # hours (the cache is cold)
    with django_assert_max_num_queries(8):
        page = text(client.get("/ally/board/"))
    assert "12 orders to pay" in page


def test_the_board_speaks_spanish_first():
    browser = Client()
    browser.force_login(make_ally(country="BO"))
    make_paid_order(amount_fiat="1234.50")
    page = text(browser.get("/ally/"))
    assert "Tablero de pedidos" in page and "Tomar: pagar 1\xa0234,50 BOB" in page


@pytest.mark.slow  # a long queue
def test_a_long_queue_shows_the_oldest_orders_and_counts_them_all(client, ally):
    from orders.board import BOARD_SIZE

    orders = [make_paid_order() for _ in range(BOARD_SIZE + 3)]
    page = text(client.get("/ally/board/"))
    assert f"{BOARD_SIZE + 3} orders to pay" in page
    assert f"The {BOARD_SIZE} that have waited longest are shown first." in page
    assert page.count('class="card board-order"') == BOARD_SIZE
    assert str(orders[0].pk) in page and str(orders[-1].pk) not in page


def test_a_cached_card_carries_each_allys_own_csrf_field():
    make_paid_order()
    pages = []
    for _ in range(2):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(make_ally(country="BO"))
        page = text(browser.get("/ally/board/"))
        token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        pages.append((browser, token))
    (_, first_token), (second, second_token) = pages
    assert first_token != second_token
    order = Order.objects.get(status=OrderStatus.AVAILABLE)
    taken = second.post(f"/ally/orders/{order.pk}/take/", {"csrfmiddlewaretoken": second_token})
    assert taken.status_code == 302  # the token in the cached card is the second ally's own
