"""The payer's pages over HTTP: who may see what, every form error, and the happy path."""

import io
import re
import resource
import time
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.test import Client

from allies.presence import ally_switch
from escrow.selectors import escrow_address
from kibo.models import User
from orders.models import Order, OrderStatus
from orders.services import order_cancel, order_complete, order_expire
from tests.factories import (
    expire_timer,
    make_ally,
    make_order,
    make_paid_order,
    make_quote,
    make_taken_order,
    make_user,
    png_claiming,
    png_upload,
    qr_png,
    shop_qr,
    tx_hash,
)

pytestmark = pytest.mark.django_db


def seconds_left(page: str) -> int:
    return int(re.search(r"(\d+) seconds left", page).group(1))


def text(response) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def payer(client):
    user = make_user()
    client.force_login(user)
    make_quote(token="USDT", fiat="BOB", rate="10.00")
    return user


# --- who may see what -----------------------------------------------------------------


def routes(order: Order) -> list[tuple[str, str]]:
    base = f"/orders/{order.pk}"
    return [
        ("get", f"{base}/"),
        ("get", f"{base}/status/"),
        ("post", f"{base}/deposit/"),
        ("post", f"{base}/cancel/"),
    ]


def test_another_users_order_is_404_on_every_route(client):
    order = make_order()
    client.force_login(make_user())
    for method, path in routes(order):
        assert getattr(client, method)(path, {"tx_hash": tx_hash()}).status_code == 404, path
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


def test_a_signed_out_visitor_is_sent_to_sign_in_from_every_user_page(client):
    order = make_order()
    for method, path in [("get", "/orders/new/"), ("get", "/orders/"), *routes(order)]:
        response = getattr(client, method)(path)
        assert response.status_code == 302 and response.url.startswith("/auth/?next="), path


@pytest.mark.parametrize("who", ["ally", "staff"])
def test_user_pages_are_not_for_allies_or_staff(client, who):
    person = make_ally() if who == "ally" else make_user(role=User.Role.ADMIN, is_staff=True)
    client.force_login(person)
    for path in ["/orders/new/", "/orders/"]:
        assert client.get(path).status_code == 404
    assert client.post("/orders/qr/", {"qr_text": shop_qr()}).status_code == 404


# --- scan and price -------------------------------------------------------------------


def test_a_user_without_a_country_is_asked_for_it_first(client):
    client.force_login(make_user(country=None))
    page = text(client.get("/orders/new/"))
    assert "Where are you paying?" in page and 'action="/account/country/"' in page


def test_the_scan_page_offers_camera_and_upload(client, payer):
    page = text(client.get("/orders/new/"))
    assert "data-start-camera" in page and 'name="qr_image"' in page
    assert "qr-scanner.umd.min.js" in page


def test_a_read_qr_comes_back_with_its_price(client, payer):
    response = client.post(
        "/orders/qr/",
        {"qr_text": shop_qr(amount="50.00", merchant="Salteñería"), "crypto_token": "USDT"},
        HTTP_HX_REQUEST="true",
    )
    page = text(response)
    assert response.status_code == 200 and "Salteñería" in page
    assert "(set by the QR)" in page and "50.00 BOB" in page
    assert "5.025 USDT" in page  # 50 / 10 with the 0.5 % spread
    assert "1 USDT = 10.00 BOB" in page and "test" in page
    assert "3 minutes" in page and "Create the order and pay" in page


def test_the_price_follows_the_typed_amount_token_and_network(client, payer):
    make_quote(token="USDC", fiat="BOB", rate="8.00")
    response = client.post(
        "/orders/qr/",
        {"qr_text": shop_qr(), "amount_fiat": "80", "crypto_token": "USDC", "network": "local"},
        HTTP_HX_REQUEST="true",
    )
    assert "10.05 USDC" in text(response)


@pytest.mark.parametrize(
    ("amount", "message"),
    [("5", "between 10 and 10000"), ("abc", "as a number"), ("12.345", "two decimals")],
)
def test_a_typed_amount_outside_the_rules_says_why(client, payer, amount, message):
    response = client.post(
        "/orders/qr/", {"qr_text": shop_qr(), "amount_fiat": amount}, HTTP_HX_REQUEST="true"
    )
    page = text(response)
    assert message in page and 'aria-invalid="true"' in page and "disabled" in page


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (shop_qr()[:-4] + "0000", "checksum is wrong"),
        (shop_qr("MXN"), "asks for MXN"),
        ("https://example.com", "a web link"),
        ("", "Scan or upload"),
    ],
)
def test_a_qr_kibo_cannot_pay_is_422_with_the_reason(client, payer, payload, reason):
    response = client.post("/orders/qr/", {"qr_text": payload}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and reason in text(response)
    assert not Order.objects.exists()


def test_an_uploaded_screenshot_is_read_on_the_server(client, payer):
    response = client.post(
        "/orders/qr/", {"qr_image": qr_png(shop_qr(amount="20.00"))}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "20.00 BOB" in text(response)


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (SimpleUploadedFile("qr.png", b"%PDF-1.7 not a picture"), "Upload a picture"),
        (SimpleUploadedFile("qr.png", b"<html><body>hi</body></html>"), "Upload a picture"),
        (SimpleUploadedFile("qr.png", b""), "Upload a picture"),
    ],
)
def test_an_upload_that_is_not_a_picture_is_refused(client, payer, upload, reason):
    response = client.post("/orders/qr/", {"qr_image": upload}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and reason in text(response)


def test_a_picture_without_a_qr_is_refused(client, payer):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(buffer, format="PNG")
    blank = SimpleUploadedFile("blank.png", buffer.getvalue())
    response = client.post("/orders/qr/", {"qr_image": blank}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "No QR code was found" in text(response)


def test_a_picture_over_the_size_limit_is_refused(client, payer, settings):
    settings.KIBO_QR_IMAGE_MAX_BYTES = 100
    response = client.post("/orders/qr/", {"qr_image": qr_png(shop_qr())}, HTTP_HX_REQUEST="true")
    assert response.status_code == 413 and "too large" in text(response)


@pytest.mark.parametrize("side", [20_000, 10_000, 3_500])
def test_a_small_file_claiming_a_huge_picture_is_refused_before_decoding(client, payer, side):
    bomb = png_claiming(side, side)
    assert len(bomb) < 20_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    started = time.perf_counter()
    response = client.post(
        "/orders/qr/",
        {"qr_image": SimpleUploadedFile("qr.png", bomb, content_type="image/png")},
        HTTP_HX_REQUEST="true",
    )
    took = time.perf_counter() - started
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert response.status_code == 413
    assert "upload a screenshot of just the QR code" in text(response)
    assert took < 0.5 and grew_mb < 10, (took, grew_mb)


def test_the_pixel_cap_is_a_setting(client, payer, settings):
    settings.KIBO_QR_IMAGE_MAX_PIXELS = 100 * 100
    response = client.post("/orders/qr/", {"qr_image": qr_png(shop_qr())}, HTTP_HX_REQUEST="true")
    assert response.status_code == 413
    settings.KIBO_QR_IMAGE_MAX_PIXELS = 2_000_000
    response = client.post("/orders/qr/", {"qr_image": qr_png(shop_qr())}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200


def test_without_javascript_the_price_step_is_a_whole_page(client, payer):
    response = client.post("/orders/qr/", {"qr_text": shop_qr(amount="30.00")})
    page = text(response)
    assert response.status_code == 200 and "<html" in page and "30.00 BOB" in page


# --- create ---------------------------------------------------------------------------


def create(client, **changes):
    fields = {
        "qr_text": shop_qr(),
        "amount_fiat": "100.00",
        "fiat_currency": "BOB",
        "crypto_token": "USDT",
        "network": "local",
        **changes,
    }
    return client.post("/orders/", fields)


def test_creating_an_order_redirects_to_its_page(client, payer):
    response = create(client)
    order = Order.objects.get(user=payer)
    assert response.status_code == 302 and response.url == f"/orders/{order.pk}/"
    assert order.amount_crypto == Decimal("10.050000")
    assert order.status == OrderStatus.PENDING_PAYMENT


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"amount_fiat": "5"}, 400, "between 10 and 10000"),
        ({"qr_text": shop_qr(amount="35.00"), "amount_fiat": "40"}, 400, "exactly 35.00 BOB"),
        ({"network": "solana"}, 400, "payments on 'solana'"),
        ({"qr_text": "garbage"}, 422, "not a payment QR"),
    ],
)
def test_a_refused_order_comes_back_as_the_form_with_the_reason(
    client, payer, changes, status, message
):
    response = create(client, **changes)
    assert response.status_code == status and message in text(response)
    assert not Order.objects.exists()


def test_a_stale_quote_creates_nothing(client, payer):
    from quotes.models import Quote

    Quote.objects.update(timestamp="2020-01-01T00:00:00Z")
    response = create(client)
    assert response.status_code == 400 and "Rates are being updated" in text(response)
    assert not Order.objects.exists()


def test_a_second_open_order_is_refused_and_the_first_is_linked(client, payer):
    first = make_order(user=payer)
    response = create(client)
    page = text(response)
    assert response.status_code == 409 and "already have an order in progress" in page
    assert f"/orders/{first.pk}/" in page and Order.objects.count() == 1


def test_a_double_click_creates_one_order(client, payer):
    assert create(client).status_code == 302
    assert create(client).status_code == 409
    assert Order.objects.count() == 1


# --- follow ---------------------------------------------------------------------------


def test_the_order_page_asks_the_wallet_for_exactly_the_due_payment(client, payer):
    order = make_order(user=payer)
    page = text(client.get(f"/orders/{order.pk}/"))
    escrow = escrow_address()
    # transfer(address,uint256) of the due amount, 10.05 USDT, to the escrow
    call = "0xa9059cbb" + escrow[2:].lower().rjust(64, "0") + f"{10_050_000:064x}"
    assert f'data-tx-to="{_token_address()}"' in page and f'data-tx-data="{call}"' in page
    assert 'data-tx-value="0"' in page and 'data-chain-id="31337"' in page
    assert escrow in page and 'src="data:image/svg+xml' in page  # the EIP-681 QR
    assert 'hx-trigger="every 5s"' in page and "Waiting for your payment" in page


def _token_address() -> str:
    from tests.helpers.chain import token

    return token("USDT").address


def test_the_status_panel_stops_polling_at_a_final_state(client, payer):
    order = make_order(user=payer)
    assert client.get(f"/orders/{order.pk}/status/").status_code == 200
    order_cancel(order_id=order.pk, user=payer)
    response = client.get(f"/orders/{order.pk}/status/")
    assert response.status_code == 286 and "Nothing was charged" in text(response)


def test_once_paid_the_status_panel_removes_the_payment_panel(client, payer):
    order = make_paid_order(user=payer)
    page = text(client.get(f"/orders/{order.pk}/status/", HTTP_HX_REQUEST="true"))
    assert "Looking for an ally" in page and 'id="payment" hx-swap-oob="true"' in page


def test_the_status_panel_is_cheap_to_poll(client, payer, django_assert_max_num_queries):
    order = make_paid_order(user=payer)
    client.get(f"/orders/{order.pk}/status/")
    with django_assert_max_num_queries(3):  # session, user, the order with its escrow
        client.get(f"/orders/{order.pk}/status/")


def test_cancelling_goes_back_to_the_order_page_with_a_message(client, payer):
    order = make_order(user=payer)
    response = client.post(f"/orders/{order.pk}/cancel/", follow=True)
    assert "The order was cancelled." in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED


def test_a_deposit_report_without_javascript_returns_to_the_page(client, payer):
    order = make_order(user=payer)
    response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": "0x12"}, follow=True)
    assert "not a transaction hash" in text(response)


def test_history_lists_the_users_orders_newest_first_in_pages(client, payer):
    from orders.views import HISTORY_PAGE_SIZE

    for _ in range(HISTORY_PAGE_SIZE + 1):
        order_cancel(order_id=make_order(user=payer).pk, user=payer)
    other = make_order()
    first_page = text(client.get("/orders/"))
    assert first_page.count('class="card"') == HISTORY_PAGE_SIZE
    assert "Page 1 of 2" in first_page and str(other.pk) not in first_page
    assert text(client.get("/orders/?page=2")).count('class="card"') == 1


def test_history_keeps_finished_rows_but_shows_every_change(client, payer):
    # given a history with a finished order and an open one, seen once
    finished = make_paid_order(user=payer)
    expire_timer(finished)
    order_expire(order_id=finished.pk)
    current = make_order(user=payer)
    first = text(client.get("/orders/"))
    assert "Expired" in first

    # when the finished order is refunded and the open one's time runs on
    Order.objects.filter(pk=finished.pk).update(status=OrderStatus.REFUNDED)
    Order.objects.filter(pk=current.pk).update(expires_at=F("expires_at") - timedelta(seconds=90))

    # then the history shows both: the new state, the new time left
    again = text(client.get("/orders/"))
    assert "Refunded" in again and "Expired" not in again
    assert seconds_left(again) <= seconds_left(first) - 90


def test_pages_are_in_spanish_by_default():
    from django.test import Client

    browser = Client()
    browser.force_login(make_user())
    make_quote()
    page = text(browser.post("/orders/qr/", {"qr_text": shop_qr(amount="1234.50")}))
    assert "Paga un QR" in page
    assert "1\xa0234,50 BOB" in page and "10,00 BOB" in page  # Spanish number format


@pytest.mark.parametrize(
    ("fiat", "shown"),
    [("BOB", "2026-11-29T11:00:00-04:00"), ("MXN", "2026-11-29T09:00:00-06:00")],
)
def test_times_are_shown_in_the_users_country(client, fiat, shown):
    from datetime import UTC, datetime

    order = make_order(fiat=fiat, amount_fiat="500.00")
    Order.objects.filter(pk=order.pk).update(created_at=datetime(2026, 11, 29, 15, tzinfo=UTC))
    client.force_login(order.user)
    assert f'datetime="{shown}"' in text(client.get("/orders/"))


# --- private files -----------------------------------------------------------------------


@pytest.fixture
def completed(django_capture_on_commit_callbacks):
    ally = make_ally()
    order = make_taken_order(ally=ally)
    with django_capture_on_commit_callbacks(execute=False):  # the payout is not the point
        order_complete(order_id=order.pk, ally=ally, proof=png_upload())
    order.refresh_from_db()
    return order


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("payer", True),
        ("its ally", True),
        ("staff allowed to open files", True),
        ("staff without that permission", False),
        ("another ally", False),
        ("another user", False),
    ],
)
def test_the_receipt_is_shown_only_to_the_payer_its_ally_and_staff(client, completed, who, sees):
    from django.contrib.auth.models import Permission

    person = {
        "payer": completed.user,
        "its ally": completed.ally,
        "staff allowed to open files": make_user(is_staff=True, role=User.Role.ADMIN),
        "staff without that permission": make_user(is_staff=True, role=User.Role.ADMIN),
        "another ally": make_ally(),
        "another user": make_user(),
    }[who]
    if who == "staff allowed to open files":
        person.user_permissions.add(Permission.objects.get(codename="view_private_files"))
    client.force_login(person)
    response = client.get(f"/orders/{completed.pk}/proof/")
    if sees:
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, no-store"
        assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    else:
        assert response.status_code == 404


def test_the_receipt_asks_a_signed_out_visitor_to_sign_in(client, completed):
    response = client.get(f"/orders/{completed.pk}/proof/")
    assert response.status_code == 302 and response["Location"].startswith("/auth/")


def test_an_order_without_a_receipt_has_none_to_show(client, payer):
    order = make_paid_order(user=payer)
    assert client.get(f"/orders/{order.pk}/proof/").status_code == 404


def test_a_completed_order_links_its_receipt(client, completed):
    client.force_login(completed.user)
    page = text(client.get(f"/orders/{completed.pk}/status/"))
    assert f'href="/orders/{completed.pk}/proof/"' in page


def test_the_payer_says_the_shop_got_paid_and_the_held_payout_goes_out(client, payer):
    from django.test import Client

    from escrow.models import Transfer
    from kibo.services import config_set
    from tests.factories import make_taken_order

    # given a completed order whose payout is held
    config_set(key="RELEASE_HOLD_MINUTES", value="10")
    order = make_taken_order(user=payer)
    order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    page = text(client.get(f"/orders/{order.pk}/"))
    assert "The shop got paid" in page and "payout goes out at" in page

    # when someone else tries to confirm it, nothing happens
    stranger = Client()
    stranger.force_login(make_user())
    assert stranger.post(f"/orders/{order.pk}/confirm/").status_code == 404
    release = Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)
    assert release.status == Transfer.Status.HELD

    # when the payer confirms, the payout goes out at once
    response = client.post(f"/orders/{order.pk}/confirm/", follow=True)
    assert "payout is on its way" in text(response)
    release.refresh_from_db()
    assert release.status == Transfer.Status.PENDING
    assert "The shop got paid" not in text(client.get(f"/orders/{order.pk}/"))


def test_while_an_order_waits_its_payer_sees_how_many_allies_are_online(client, payer):
    order = make_paid_order(user=payer)
    assert "No ally is online right now" in text(client.get(f"/orders/{order.pk}/"))
    for _ in range(3):
        ally_switch(ally=make_ally(country="BO"), online=True)
    ally_switch(ally=make_ally(country="MX"), online=True)  # another country's
    cache.clear()  # the count is kept a few seconds
    page = text(client.get(f"/orders/{order.pk}/status/"))
    assert "3 allies online" in page
    spanish = Client()
    spanish.force_login(payer)
    assert "3 aliados en línea" in text(spanish.get(f"/orders/{order.pk}/"))


def test_the_price_step_warns_before_paying_when_no_ally_is_online(client, payer):
    warning = "No ally is online in your country right now"
    assert warning in text(client.post("/orders/qr/", {"qr_text": shop_qr(amount="50.00")}))
    ally_switch(ally=make_ally(country="BO"), online=True)
    cache.clear()
    assert warning not in text(client.post("/orders/qr/", {"qr_text": shop_qr(amount="50.00")}))
