"""A payer, an ally and a staff member, each in their own browser: the ally uploads a
receipt, the payer (on a phone, in Spanish) says the shop was not paid, staff uphold the
dispute in the admin, the payer is refunded on chain and the ally is penalized."""

import pytest
from eth_utils import to_checksum_address
from PIL import Image
from playwright.sync_api import expect

from escrow.amounts import to_base_units
from escrow.models import Transfer
from orders.models import Dispute, OrderStatus
from tests.factories import wallet
from tests.helpers.browser import ARTIFACTS
from tests.helpers.chain import balance
from tests.helpers.pages import (
    SPANISH,
    ally_at_the_board,
    dev_account,
    fits_a_phone,
    pay_a_qr,
    scan_with_camera,
    the_order_appears_and_is_taken,
)

pytestmark = [
    pytest.mark.slow,  # a real browser, server, worker and beat
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("chain"),
]


@pytest.mark.usefixtures("kibo_running")
def test_the_payer_disputes_staff_uphold_the_payer_is_refunded_and_the_ally_penalized(
    live_server, page_for, shoot, accessible, admin_user
):
    ally_page, ally_address = ally_at_the_board(page_for, live_server, shoot, accessible, account=6)
    ally_usdt = balance("USDT", ally_address)

    # the payer pays a café's QR from a phone, in Spanish
    payer_page, payer = page_for(dev_account(7), width=360, height=740, locale="es-BO")
    order = pay_a_qr(
        payer_page,
        live_server,
        SPANISH,
        shoot=shoot,
        accessible=accessible,
        read_qr=scan_with_camera(SPANISH),
    )
    payer_usdt = balance("USDT", to_checksum_address(payer.address))

    # the ally takes it and uploads a receipt
    the_order_appears_and_is_taken(ally_page, order, shoot, accessible)
    receipt = ARTIFACTS / "receipt-disputed.png"
    Image.new("RGB", (600, 900), "white").save(receipt)
    ally_page.set_input_files("#proof", receipt)
    ally_page.get_by_role("button", name="Send the receipt").click()
    expect(ally_page.get_by_text("Done: the QR is paid.")).to_be_visible()

    # the payer's page offers both answers; the shop says no money arrived
    status = payer_page.locator("#status [data-status]")
    expect(status).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
    payer_page.get_by_text("El comercio NO recibió el pago", exact=True).click()
    payer_page.get_by_label("¿Qué pasó?").fill("La cafetería dice que no le llegó el dinero.")
    accessible(payer_page)
    fits_a_phone(payer_page)
    shoot(payer_page, "payer-disputes")
    payer_page.get_by_role("button", name="Abrir un reclamo").click()
    expect(payer_page.locator("[data-dispute]")).to_have_attribute("data-dispute", "OPEN")
    expect(payer_page.locator("#status")).to_contain_text("queda congelado")
    accessible(payer_page)
    fits_a_phone(payer_page)
    shoot(payer_page, "payer-dispute-open")
    release = Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)
    assert release.status == Transfer.Status.FROZEN

    # the ally's board says so; the ally gives their side from the order's page
    ally_page.goto(live_server.url + "/ally/")
    ally_page.get_by_role("link", name="Give your side").click()
    ally_page.wait_for_url(f"**/ally/orders/{order.pk}/")
    expect(ally_page.get_by_text("Your payout is frozen")).to_be_visible()
    ally_page.get_by_label("Your side").fill("I paid it from my bank at 10:02.")
    ally_page.set_input_files("#answer-evidence", receipt)
    accessible(ally_page)
    shoot(ally_page, "ally-answers")
    ally_page.get_by_role("button", name="Send my side").click()
    expect(ally_page.get_by_text("Your side was sent.")).to_be_visible()
    expect(ally_page.get_by_text("I paid it from my bank at 10:02.")).to_be_visible()
    accessible(ally_page)

    # staff read it in the admin and uphold it, with a note
    staff_page, _ = page_for(wallet())
    staff_page.goto(live_server.url + "/admin/login/?next=/admin/dashboard/")
    staff_page.get_by_label("Username or wallet address").fill("staff")
    staff_page.get_by_label("Password").fill("staff-password")
    staff_page.get_by_role("button", name="Log in").click()
    staff_page.wait_for_url("**/admin/dashboard/")
    staff_page.evaluate("window.__sameDocument = true")
    staff_page.get_by_role("link", name="Bolivia").click()  # the figures swap in by HTMX
    expect(staff_page.locator(".console-asof")).to_contain_text("BOB")
    expect(staff_page.locator('[data-figure="disputes"]')).to_contain_text("1")
    expect(staff_page.locator('[data-figure="frozen"]')).to_have_text("1")
    assert staff_page.evaluate("window.__sameDocument === true"), "the console reloaded"
    staff_page.wait_for_url("**/admin/dashboard/?country=BO")
    shoot(staff_page, "staff-console")
    staff_page.get_by_role("link", name="Open disputes").click()
    staff_page.wait_for_url("**/admin/orders/dispute/**")
    dispute = Dispute.objects.get(order=order)
    staff_page.locator(f'input[name="_selected_action"][value="{dispute.pk}"]').check()
    staff_page.locator('select[name="action"]').select_option("uphold")
    staff_page.get_by_role("button", name="Go").click()
    staff_page.get_by_label("Note").fill("The café's bank shows no payment.")
    shoot(staff_page, "staff-upholds")
    staff_page.get_by_role("button", name="Uphold").click()
    expect(staff_page.get_by_text("1 decided.")).to_be_visible()

    # the payer's page shows the refund, without a reload, once it is confirmed on chain
    expect(status).to_have_attribute("data-status", "REFUNDED", timeout=45_000)
    expect(payer_page.locator("#status")).to_contain_text("The café's bank shows no payment.")
    expect(payer_page.locator("#status")).to_contain_text("I paid it from my bank at 10:02.")
    accessible(payer_page)
    fits_a_phone(payer_page)
    shoot(payer_page, "payer-refunded")
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    deposit = to_base_units(order.amount_crypto, 6, round_up=True)
    assert balance("USDT", to_checksum_address(payer.address)) == payer_usdt + deposit
    assert balance("USDT", ally_address) == ally_usdt

    # and the ally's board shows the penalty for the false receipt
    ally_page.goto(live_server.url + "/ally/")
    penalty = ally_page.locator(".penalty")
    expect(penalty).to_contain_text("You are penalized until")
    expect(penalty).to_contain_text("Uploaded a false proof")
    accessible(ally_page)
    shoot(ally_page, "ally-penalized")
