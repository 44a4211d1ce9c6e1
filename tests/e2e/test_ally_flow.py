"""An ally and a payer, each in their own browser: the order travels from the payer's wallet
to the ally's board, the ally pays the QR and uploads the receipt, and is paid on chain; or
the ally stalls, is penalized, and the payer is refunded."""

import pytest
from eth_utils import to_checksum_address
from PIL import Image
from playwright.sync_api import expect

from escrow.amounts import to_base_units
from kibo.services import config_set
from orders.models import OrderStatus
from tests.helpers.browser import ARTIFACTS, CAMERA_QR
from tests.helpers.chain import balance
from tests.helpers.pages import (
    ALLY_ENGLISH,
    ALLY_SPANISH,
    ENGLISH,
    ally_at_the_board,
    dev_account,
    fits_a_phone,
    pay_a_qr,
    qr_on_screen,
    scan_with_camera,
    the_order_appears_and_is_taken,
)
from tests.helpers.processes import wait_for

pytestmark = [
    pytest.mark.slow,  # a real browser, server, worker and beat
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("chain"),
]


@pytest.mark.usefixtures("kibo_running")
def test_an_ally_takes_pays_and_proves_and_is_paid_the_payout_on_chain(
    live_server, page_for, shoot, accessible
):
    ally_page, ally_address = ally_at_the_board(page_for, live_server, shoot, accessible, account=6)
    ally_usdt = balance("USDT", ally_address)

    # the payer pays a café's QR from their wallet
    payer_page, _ = page_for(dev_account(7))
    order = pay_a_qr(
        payer_page,
        live_server,
        ENGLISH,
        shoot=shoot,
        accessible=accessible,
        read_qr=scan_with_camera(ENGLISH),
    )

    # while it waits, the payer sees that an ally is there
    expect(payer_page.locator("[data-allies-online]")).to_have_text("1 ally online")

    # the ally sees it appear, takes it, and the screen shows the very QR the payer scanned
    the_order_appears_and_is_taken(ally_page, order, shoot, accessible)
    assert qr_on_screen(ally_page) == CAMERA_QR == order.qr_data

    # the ally uploads the bank receipt
    receipt = ARTIFACTS / "receipt.jpg"
    Image.new("RGB", (600, 900), "white").save(receipt, quality=80)
    ally_page.set_input_files("#proof", receipt)
    ally_page.get_by_role("button", name=ALLY_ENGLISH.send).click()
    expect(ally_page.get_by_text(ALLY_ENGLISH.done)).to_be_visible()
    accessible(ally_page)
    shoot(ally_page, "ally-done")

    # the payer's page shows it paid without a reload
    status = payer_page.locator("#status [data-status]")
    expect(status).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
    expect(payer_page.get_by_role("link", name="See the receipt")).to_be_visible()
    shoot(payer_page, "payer-completed")

    # the payout is held until the payer, who checked with the shop, says it got paid
    assert balance("USDT", ally_address) == ally_usdt
    payer_page.get_by_role("button", name="The shop got paid").click()
    expect(payer_page.get_by_text("The ally's payout is on its way.")).to_be_visible()
    accessible(payer_page)

    # and the ally's wallet holds exactly the payout more
    order.refresh_from_db()
    payout = to_base_units(order.payout_crypto, 6)
    assert wait_for(lambda: balance("USDT", ally_address) > ally_usdt, seconds=30)
    assert balance("USDT", ally_address) == ally_usdt + payout


@pytest.mark.usefixtures("kibo_running")
def test_an_ally_who_stalls_is_penalized_and_the_payer_is_refunded(
    live_server, page_for, shoot, accessible
):
    # the ally works from a 360 px phone in Spanish
    config_set(key="TAKEN_TIMEOUT_MINUTES", value="0.1")  # six seconds to upload the receipt
    ally_page, _ = ally_at_the_board(
        page_for,
        live_server,
        shoot,
        accessible,
        account=8,
        words=ALLY_SPANISH,
        width=360,
        height=740,
        locale="es-BO",
    )
    payer_page, payer = page_for(dev_account(9))
    order = pay_a_qr(
        payer_page,
        live_server,
        ENGLISH,
        shoot=shoot,
        accessible=accessible,
        read_qr=scan_with_camera(ENGLISH),
    )
    payer_usdt = balance("USDT", to_checksum_address(payer.address))

    the_order_appears_and_is_taken(ally_page, order, shoot, accessible, ALLY_SPANISH)

    # nobody uploads anything; beat's sweep expires the order and penalizes the ally
    ally_page.goto(live_server.url + "/ally/")
    penalty = ally_page.locator(".penalty")
    expect(penalty).to_contain_text(ALLY_SPANISH.penalized, timeout=30_000)
    expect(penalty).to_contain_text(ALLY_SPANISH.reason)
    accessible(ally_page)
    fits_a_phone(ally_page)
    shoot(ally_page, "ally-penalized")

    status = payer_page.locator("#status [data-status]")
    expect(status).to_have_attribute("data-status", "REFUNDED", timeout=45_000)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    refund = order.transfers.get(purpose="REFUND").mined_tx_hash
    expect(payer_page.locator("#status")).to_contain_text(refund)
    accessible(payer_page)
    shoot(payer_page, "payer-refunded")
    deposit = to_base_units(order.amount_crypto, 6, round_up=True)
    assert balance("USDT", to_checksum_address(payer.address)) == payer_usdt + deposit
