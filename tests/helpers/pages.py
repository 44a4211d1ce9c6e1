"""What a payer and an ally do in the browser, step by step: the end-to-end tests' shared
steps (Playwright pages driven against the real server)."""

import io
import os
import re
from dataclasses import dataclass

import zxingcpp
from eth_utils import to_checksum_address
from PIL import Image
from playwright.sync_api import expect

from devtools.localchain import mint_local
from orders.models import Order
from tests.factories import make_ally
from tests.helpers.chain import rpc, token

# --- the payer -------------------------------------------------------------------------------


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


# --- the ally --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllyWords:
    sign_in: str
    board: str
    take: str  # the take button of the 35.00 BOB order
    send: str
    done: str
    penalized: str
    reason: str
    offline: str  # the board's switch, off
    online: str


ALLY_ENGLISH = AllyWords(
    sign_in=ENGLISH.sign_in,
    board="Order board",
    take="Take: pay 35.00 BOB",
    send="Send the receipt",
    done="Done: the QR is paid.",
    penalized="You are penalized until",
    reason="Did not upload proof in time",
    offline="Offline",
    online="Online",
)
ALLY_SPANISH = AllyWords(
    sign_in="Conectar billetera e iniciar sesión",
    board="Tablero de pedidos",
    take="Tomar: pagar 35,00 BOB",
    send="Enviar el comprobante",
    done="Listo: el QR está pagado.",
    penalized="Estás penalizado hasta las",
    reason="No subió el comprobante a tiempo",
    offline="Desconectado",
    online="En línea",
)


def fits_a_phone(page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"wider than the phone: {width}"


def ally_at_the_board(
    page_for, live_server, shoot, accessible, *, account: int, words=ALLY_ENGLISH, **screen
):
    """An approved Bolivian ally signs in with their wallet and lands on the board."""
    address = to_checksum_address(rpc("eth_accounts")[account])
    make_ally(address=address, country="BO")
    page, _ = page_for(address, **screen)
    page.goto(live_server.url + "/auth/")
    page.get_by_role("button", name=words.sign_in).click()
    page.wait_for_url("**/ally/")
    expect(page.get_by_role("heading", name=words.board)).to_be_visible()
    # a new ally is offline until they switch on (or their working hours say so)
    page.get_by_role("switch", name=words.offline).click()
    expect(page.get_by_role("switch", name=words.online)).to_have_attribute("aria-checked", "true")
    accessible(page)
    shoot(page, "ally-board-empty")
    page.evaluate("window.__sameDocument = true")
    return page, address


def the_order_appears_and_is_taken(
    page, order: Order, shoot, accessible, words=ALLY_ENGLISH
) -> None:
    card = page.locator(f'[data-order-id="{order.pk}"]')
    expect(card).to_be_visible(timeout=30_000)
    assert page.evaluate("window.__sameDocument === true"), "the board reloaded"
    assert page.evaluate("document.body.dataset.newOrders") == "1"  # the chime rang once
    accessible(page)
    shoot(page, "ally-board-new-order")
    card.get_by_role("button", name=words.take, exact=True).click()
    page.wait_for_url(f"**/ally/orders/{order.pk}/")
    accessible(page)
    fits_a_phone(page)
    shoot(page, "ally-order-qr")


def qr_on_screen(page) -> str:
    """What a banking app scanning the ally's screen reads."""
    picture = Image.open(io.BytesIO(page.locator("[data-qr]").screenshot()))
    found = zxingcpp.read_barcodes(picture)
    assert found, "no QR readable on the ally's screen"
    return found[0].text
