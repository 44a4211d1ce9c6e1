"""A wallet staff block can't sign in, pay a QR, apply as an ally or take an order; every
attempt is recorded, and lifting the block gives the wallet back its use."""

import pytest
from django.test import Client
from eth_account import Account

from allies.services import ally_apply
from audit.models import Action, Log
from escrow.models import Transfer
from kibo.errors import WalletBlocked
from kibo.models import BlockedWallet, User
from orders.blocking import wallet_block, wallet_unblock
from orders.models import Order, OrderStatus
from orders.services import order_take
from tests.factories import (
    make_ally,
    make_order,
    make_paid_order,
    make_quote,
    make_taken_order,
    make_user,
)
from tests.helpers.auth import sign_in

pytestmark = pytest.mark.django_db


def attempts(wallet: str) -> list[str]:
    return [
        log.metadata["attempt"]
        for log in Log.objects.filter(action=Action.BLOCKED_ATTEMPT, actor_wallet=wallet)
    ]


def test_a_blocked_wallet_cannot_sign_in_until_unblocked(client, admin_user):
    account = Account.create()
    block = wallet_block(wallet=account.address, reason="stolen funds", staff=admin_user)

    refused = sign_in(client, account)

    assert refused.status_code == 403 and "blocked" in refused.json()["error"]
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(wallet_address=account.address).exists()
    assert attempts(account.address) == ["sign in"]

    wallet_unblock(block_id=block.pk, staff=admin_user)
    assert sign_in(client, account).status_code == 200


def test_blocking_a_signed_in_wallet_ends_its_sessions(admin_user):
    user = make_user()
    browser = Client(HTTP_ACCEPT_LANGUAGE="es")
    browser.force_login(user)
    assert browser.get("/orders/").status_code == 200

    wallet_block(wallet=user.wallet_address, reason="chargebacks", staff=admin_user)

    response = browser.get("/orders/")
    assert response.status_code == 302 and response["Location"].startswith("/auth/")


def test_a_blocked_user_cannot_pay_a_qr(admin_user):
    user = make_user()
    make_quote()
    wallet_block(wallet=user.wallet_address, reason="chargebacks", staff=admin_user)

    with pytest.raises(WalletBlocked, match="blocked"):
        make_order(user=user)

    assert not Order.objects.exists() and attempts(user.wallet_address) == ["pay a QR"]


def test_a_blocked_wallet_cannot_apply_as_an_ally(admin_user):
    user = make_user()
    wallet_block(wallet=user.wallet_address, reason="fake receipts", staff=admin_user)

    with pytest.raises(WalletBlocked):
        ally_apply(user=user, country="BO", display_name="Ana", bank="BNB")

    assert not user.ally_applications.exists()
    assert attempts(user.wallet_address) == ["apply as an ally"]


def test_blocking_a_payer_cancels_the_orders_no_ally_has_taken(admin_user):
    # given a payer with a paid order on the board, and one an ally is paying
    payer = make_user()
    waiting = make_paid_order(user=payer)
    other = make_taken_order()

    # when staff block the payer (and the payer of the taken order)
    wallet_block(wallet=payer.wallet_address, reason="stolen funds", staff=admin_user)
    wallet_block(wallet=other.user.wallet_address, reason="stolen funds", staff=admin_user)

    # then the paid order leaves the board and its deposit goes back; the taken one goes on
    waiting.refresh_from_db()
    other.refresh_from_db()
    assert waiting.status == OrderStatus.EXPIRED
    assert waiting.transfers.filter(purpose=Transfer.Purpose.REFUND).exists()
    assert Transfer.objects.get(order=waiting).purpose == Transfer.Purpose.REFUND
    assert other.status == OrderStatus.TAKEN
    expired = Log.objects.get(order=waiting, action=Action.ORDER_EXPIRED)
    assert expired.metadata["reason"] == "blocked"
    assert expired.actor_wallet == admin_user.wallet_address


def test_a_block_that_lands_after_the_first_look_is_still_refused(admin_user):
    from orders.services import _order_take

    # given an ally who passed the first look, then was blocked before taking the lock
    ally, order = make_ally(), make_paid_order()
    wallet_block(wallet=ally.wallet_address, reason="fake receipts", staff=admin_user)

    with pytest.raises(WalletBlocked):
        _order_take(order_id=order.pk, ally=ally)

    order.refresh_from_db()
    assert order.status == "AVAILABLE"


def test_a_blocked_ally_cannot_take_an_order(admin_user):
    ally, order = make_ally(), make_paid_order()
    wallet_block(wallet=ally.wallet_address, reason="fake receipts", staff=admin_user)

    with pytest.raises(WalletBlocked):
        order_take(order_id=order.pk, ally=ally)

    order.refresh_from_db()
    assert order.status == "AVAILABLE" and attempts(ally.wallet_address) == ["take an order"]


def test_a_blocked_ally_cannot_complete_the_order_in_hand(admin_user):
    from orders.services import order_complete
    from tests.factories import make_taken_order, png_upload

    order = make_taken_order()
    wallet_block(wallet=order.ally.wallet_address, reason="fake receipts", staff=admin_user)

    with pytest.raises(WalletBlocked):
        order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())

    order.refresh_from_db()
    assert order.status == "TAKEN" and not order.proof_file
    assert attempts(order.ally.wallet_address) == ["upload a receipt"]


def test_staff_block_and_unblock_from_the_admin_audited(admin_client, admin_user):
    wallet = Account.create().address

    admin_client.post(
        "/admin/kibo/blockedwallet/add/",
        {"wallet_address": wallet.lower(), "reason": "phishing"},
    )
    again = admin_client.post(
        "/admin/kibo/blockedwallet/add/", {"wallet_address": wallet, "reason": "twice"}
    )

    block = BlockedWallet.objects.get()
    assert (block.wallet_address, block.reason, block.blocked_by) == (
        wallet,
        "phishing",
        admin_user,
    )
    assert "blocked already" in again.content.decode()
    admin_client.post(
        "/admin/kibo/blockedwallet/",
        {"action": "unblock", "_selected_action": [str(block.pk)]},
    )
    block.refresh_from_db()
    assert block.unblocked_at is not None and block.unblocked_by == admin_user
    trail = Log.objects.filter(action__in=[Action.WALLET_BLOCKED, Action.WALLET_UNBLOCKED])
    assert sorted((log.action, log.metadata["wallet"]) for log in trail) == [
        (Action.WALLET_BLOCKED, wallet),
        (Action.WALLET_UNBLOCKED, wallet),
    ]
    assert all(log.metadata["staff"] == admin_user.username for log in trail)
