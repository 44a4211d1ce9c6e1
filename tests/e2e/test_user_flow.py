"""A payer, in the browser: sign in with the wallet, read a shop's QR, pay, see it AVAILABLE."""

import os
import re
from dataclasses import dataclass

import pytest
from PIL import Image
from playwright.sync_api import expect

from devtools.localchain import mint_local
from kibo.models import User
from orders.models import Order, OrderStatus
from tests.chainkit import rpc, token
from tests.e2e.conftest import ARTIFACTS, qr_image
from tests.factories import shop_qr

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("chain"),
]


@dataclass(frozen=True)
class Words:
    """What the payer reads and clicks, in one language."""

    sign_in: str
    continue_: str
    scan: str
    read: str
    create: str
    pay: str
    available: str


ENGLISH = Words(
    sign_in="Connect wallet and sign in",
    continue_="Continue",
    scan="Scan with the camera",
    read="Read the QR",
    create="Create the order and pay",
    pay="Pay with my wallet",
    available="Looking for an ally",
)
SPANISH = Words(
    sign_in="Conectar billetera e iniciar sesión",
    continue_="Continuar",
    scan="Escanear con la cámara",
    read="Leer el QR",
    create="Crear el pedido y pagar",
    pay="Pagar con mi billetera",
    available="Buscando un aliado",
)


def dev_account(index: int) -> str:
    """One of anvil's unlocked development accounts (0 is the escrow), holding test USDT."""
    address = rpc("eth_accounts")[index]
    mint_local(
        os.environ["KIBO_RPC_URL_LOCAL"],
        token_address=token("USDT").address,
        to=address,
        amount_base=1_000 * 10**6,
    )
    return address


def pay_a_qr(page, live_server, words: Words, *, shoot, accessible, read_qr) -> Order:
    """The whole flow; `read_qr(page)` gets the QR in, by camera or by upload."""
    page.goto(live_server.url + "/auth/")
    accessible(page)
    shoot(page, "sign-in")
    page.get_by_role("button", name=words.sign_in).click()
    page.wait_for_url("**/orders/new/")

    page.locator("#country").select_option("BO")  # a first sign-in: choose the country
    page.get_by_role("button", name=words.continue_).click()
    page.wait_for_url("**/orders/new/")
    accessible(page)
    shoot(page, "scan")

    read_qr(page)
    price = page.locator("#price-form [data-due]")
    try:
        expect(price).to_be_visible()
    except AssertionError:
        shoot(page, "no-price")
        scanner = page.locator("[data-scan-status]").text_content()
        raise AssertionError(f"no price; the scanner said {scanner!r}") from None
    accessible(page)
    shoot(page, "price")

    page.get_by_role("button", name=words.create).click()
    page.wait_for_url(re.compile(r"/orders/[0-9a-f-]{36}/$"))
    accessible(page)
    shoot(page, "payment")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    page.get_by_role("button", name=words.pay).click()
    status = page.locator("#status [data-status]")
    expect(status).to_have_attribute("data-status", "AVAILABLE", timeout=30_000)
    expect(status).to_have_text(words.available)
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    expect(page.locator("#payment [data-pay-wallet]")).to_have_count(0)
    accessible(page)
    shoot(page, "available")
    return Order.objects.get(user__wallet_address__iexact=page_wallet(page))


def page_wallet(page) -> str:
    return page.evaluate("window.ethereum.request({method: 'eth_accounts'})")[0]


def scan_with_camera(words: Words):
    def read(page) -> None:
        page.get_by_role("button", name=words.scan).click()

    return read


def upload(path, words: Words):
    def read(page) -> None:
        page.set_input_files("#qr_image", path)
        page.get_by_role("button", name=words.read).click()

    return read


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
