"""A payer, in the browser: sign in with the wallet, read a shop's QR, pay, see it AVAILABLE."""

import pytest
from PIL import Image
from playwright.sync_api import expect

from kibo.models import User
from orders.models import OrderStatus
from tests.factories import shop_qr
from tests.helpers.browser import ARTIFACTS, qr_image
from tests.helpers.pages import ENGLISH, SPANISH, dev_account, pay_a_qr, scan_with_camera, upload

pytestmark = [
    pytest.mark.slow,  # a real browser, server, worker and beat
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("chain"),
]


@pytest.mark.usefixtures("kibo_running")
def test_a_payer_scans_with_the_camera_pays_from_the_wallet_and_sees_it_available(
    live_server, page_for, shoot, accessible
):
    # given a wallet with test USDT, and a camera looking at a café's QR for 35.00 BOB
    page, wallet = page_for(dev_account(3))

    # when the payer signs in, scans, creates the order and pays from the wallet
    order = pay_a_qr(
        page,
        live_server,
        ENGLISH,
        shoot=shoot,
        accessible=accessible,
        read_qr=scan_with_camera(ENGLISH),
    )

    # then the order holds the camera's QR, was paid on chain, and waits for an ally
    assert order.status == OrderStatus.AVAILABLE and order.amount_fiat == 35
    assert order.qr_data == shop_qr("BOB", amount="35.00", merchant="Cafe del Prado")
    assert {"personal_sign", "eth_sendTransaction"} <= set(wallet.requests)
    assert User.objects.get(pk=order.user_id).country == "BO"


@pytest.mark.usefixtures("kibo_running")
def test_a_payer_uploads_a_screenshot_of_the_qr_instead(live_server, page_for, shoot, accessible):
    screenshot = ARTIFACTS / "screenshot-qr.png"
    qr_image(shop_qr("BOB", amount="120.00", merchant="Farmacia Sucre")).save(screenshot)
    no_qr = ARTIFACTS / "no-qr.png"
    Image.new("RGB", (300, 300), "white").save(no_qr)
    page, _ = page_for(dev_account(4))

    def a_wrong_picture_first(page) -> None:
        upload(no_qr, ENGLISH)(page)
        expect(page.locator("#step [role=alert]")).to_contain_text("No QR code")
        shoot(page, "no-qr-refused")
        upload(screenshot, ENGLISH)(page)

    order = pay_a_qr(
        page,
        live_server,
        ENGLISH,
        shoot=shoot,
        accessible=accessible,
        read_qr=a_wrong_picture_first,
    )

    assert order.status == OrderStatus.AVAILABLE and order.amount_fiat == 120


@pytest.mark.usefixtures("kibo_running")
def test_on_a_360_pixel_phone_in_spanish(live_server, page_for, shoot, accessible):
    page, _ = page_for(dev_account(5), width=360, height=740, locale="es-BO")

    def fits_the_screen(page) -> None:
        accessible(page)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"wider than the phone: {width}"

    order = pay_a_qr(
        page,
        live_server,
        SPANISH,
        shoot=shoot,
        accessible=fits_the_screen,
        read_qr=scan_with_camera(SPANISH),
    )

    assert order.status == OrderStatus.AVAILABLE
    assert page.locator("html").get_attribute("lang") == "es"
