"""Real tokens on the real local chain: deposits in, payouts and refunds out, each once."""

from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from escrow.amounts import to_base_units
from escrow.models import Deposit, EscrowAccount, Transfer
from escrow.selectors import escrow_address
from escrow.transfers import transfers_unhold_due
from orders.models import OrderStatus
from orders.services import order_cancel, order_complete, order_expire, order_take
from tests.factories import expire_timer, make_ally, make_order, make_user, png_upload
from tests.helpers.chain import balance, funded_wallet, send
from tests.helpers.money import due_base, order_for, pay, settle
from tests.helpers.networks import change_local_network

pytestmark = [
    pytest.mark.slow,  # money moving on the chain, settled block by block
    pytest.mark.money,
    pytest.mark.django_db,
    pytest.mark.usefixtures("chain"),
]


@pytest.fixture
def client():
    """The status page reports deposits through htmx, which gets the result as a partial."""
    return Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_HX_REQUEST="true")


def text(response) -> str:
    return unescape(response.content.decode())


@pytest.mark.parametrize("symbol", ["USDT", "USDC", "ETH"])
def test_a_reported_deposit_makes_the_order_available(pace, client, symbol):
    wallet = funded_wallet()
    order = order_for(wallet, token=symbol)

    tx, response = pay(client, order, wallet)

    assert response.status_code == 200, response.content
    assert "Payment received" in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE and order.deposit_tx_hash == tx
    deposit = Deposit.objects.get(tx_hash=tx)
    assert deposit.outcome == Deposit.Outcome.CREDITED and deposit.order == order
    assert EscrowAccount.objects.get(order=order).status == EscrowAccount.Status.LOCKED


def test_completing_pays_the_ally_exactly_the_payout_once(pace, client):
    wallet = funded_wallet()
    order = order_for(wallet, token="USDT")
    pay(client, order, wallet)
    ally = make_ally()
    order_take(order_id=order.pk, ally=ally)
    before = balance("USDT", ally.wallet_address)

    order_complete(order_id=order.pk, ally=ally, proof=png_upload())
    release = Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)
    assert release.status == Transfer.Status.HELD
    Transfer.objects.filter(pk=release.pk).update(held_until=timezone.now())  # the hold ends
    transfers_unhold_due()
    settle(release)
    settle(release)

    order.refresh_from_db()
    payout = to_base_units(order.payout_crypto, 6)
    assert balance("USDT", ally.wallet_address) - before == payout
    release.refresh_from_db()
    assert release.status == Transfer.Status.CONFIRMED and release.signed.count() == 1
    assert order.release_tx_hash == release.mined_tx_hash
    assert EscrowAccount.objects.get(order=order).status == EscrowAccount.Status.RELEASED


@pytest.mark.parametrize("symbol", ["USDC", "ETH"])
def test_an_expired_paid_order_is_refunded_to_the_user(pace, client, symbol):
    wallet = funded_wallet()
    order = order_for(wallet, token=symbol)
    start = balance(symbol, wallet.address)
    pay(client, order, wallet)
    expire_timer(order)
    order_expire(order_id=order.pk)

    refund = Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)
    settle(refund)

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    refund.refresh_from_db()
    assert refund.status == Transfer.Status.CONFIRMED
    assert refund.mined_tx_hash == refund.signed.get().tx_hash
    assert EscrowAccount.objects.get(order=order).status == EscrowAccount.Status.REFUNDED
    spent_on_gas = start - balance(symbol, wallet.address) if symbol == "ETH" else 0
    if symbol == "ETH":
        assert 0 < spent_on_gas < 10**15  # only the user's own gas for the deposit is gone
    else:
        assert balance(symbol, wallet.address) == start


def test_a_cancelled_paid_order_is_refunded_too(client):
    wallet = funded_wallet()
    order = order_for(wallet, token="USDT")
    start = balance("USDT", wallet.address)
    pay(client, order, wallet)
    order_cancel(order_id=order.pk, user=order.user)
    settle(Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND))
    assert balance("USDT", wallet.address) == start


def test_the_excess_of_an_over_payment_is_returned(pace, client):
    wallet = funded_wallet()
    order = order_for(wallet, token="USDC")
    start = balance("USDC", wallet.address)

    _, response = pay(client, order, wallet, amount_base=due_base(order) + 2_500_000)

    assert "extra you sent is being returned" in text(response)
    settle(Transfer.objects.get(purpose=Transfer.Purpose.RETURN))
    assert start - balance("USDC", wallet.address) == due_base(order)


def assert_rejected(response, message):
    assert response.status_code == 400, response.content
    assert message in text(response)


def test_a_token_at_another_contract_with_the_same_symbol_is_rejected(client):
    from devtools.localchain import load_artifact
    from tests.helpers.chain import w3

    web3 = w3()
    wallet = funded_wallet()
    artifact = load_artifact("KiboTestToken")
    fake = web3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = fake.constructor("Tether USD", "USDT", 6).build_transaction(
        {
            "from": wallet.address,
            "nonce": web3.eth.get_transaction_count(wallet.address),
            "chainId": 31337,
        }
    )
    mined = web3.eth.wait_for_transaction_receipt(
        web3.eth.send_raw_transaction(wallet.sign_transaction(tx).raw_transaction)
    )
    fake_address = mined["contractAddress"]
    mint = (
        web3.eth.contract(address=fake_address, abi=artifact["abi"])
        .functions.mint(wallet.address, 10**12)
        .build_transaction(
            {
                "from": wallet.address,
                "nonce": web3.eth.get_transaction_count(wallet.address),
                "chainId": 31337,
            }
        )
    )
    web3.eth.wait_for_transaction_receipt(
        web3.eth.send_raw_transaction(wallet.sign_transaction(mint).raw_transaction)
    )
    order = order_for(wallet, token="USDT")

    _, response = pay(client, order, wallet, token_address=fake_address)

    assert_rejected(response, "a token Kibo does not accept")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT and not Deposit.objects.exists()


def test_a_payment_to_another_address_is_rejected(client):
    wallet = funded_wallet()
    order = order_for(wallet)
    _, response = pay(client, order, wallet, to=funded_wallet().address)
    assert_rejected(response, "sent nothing to Kibo's escrow address")
    assert not Deposit.objects.exists()


def test_a_payment_from_another_wallet_is_refused_and_returned_to_its_sender(client):
    from escrow.deposits import deposits_watch

    wallet, stranger = funded_wallet(), funded_wallet()
    order = order_for(wallet)
    start = balance("USDT", stranger.address)

    _, response = pay(client, order, stranger)

    assert_rejected(response, "not sent from your wallet")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT and not Deposit.objects.exists()
    deposits_watch(network="local")  # the watcher records it by its sender
    settle(Transfer.objects.get(purpose=Transfer.Purpose.RETURN))
    assert balance("USDT", stranger.address) == start


def test_reporting_someone_elses_payment_cannot_get_it_returned(client):
    # given A paid their own order
    a_wallet = funded_wallet()
    a_order = order_for(a_wallet)
    tx = send(a_wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(a_order))
    # when B reports A's transaction for B's order
    b_order = make_order(user=make_user())
    client.force_login(b_order.user)
    response = client.post(f"/orders/{b_order.pk}/deposit/", {"tx_hash": tx})
    # then it is refused, as A's, and A can still use it
    assert_rejected(response, "This payment belongs to another order, not to this one.")
    client.force_login(a_order.user)
    assert client.post(f"/orders/{a_order.pk}/deposit/", {"tx_hash": tx}).status_code == 200
    a_order.refresh_from_db()
    assert a_order.status == OrderStatus.AVAILABLE


def test_an_unreachable_network_is_a_clear_try_again(client, settings):

    order = make_order()
    change_local_network(settings, rpc_urls=("http://127.0.0.1:9",))
    client.force_login(order.user)
    response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": "0x" + "ab" * 32})
    assert response.status_code == 503 and "try again in a minute" in text(response)


def test_an_under_payment_is_returned(pace, client):
    wallet = funded_wallet()
    order = order_for(wallet, token="USDC")
    start = balance("USDC", wallet.address)

    _, response = pay(client, order, wallet, amount_base=due_base(order) - 1)

    received, due = (
        f"{units / 10**6:.6f} USDC" for units in (due_base(order) - 1, due_base(order))
    )
    assert f"({received} received, {due} due)" in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    settle(Transfer.objects.get(purpose=Transfer.Purpose.RETURN))
    assert balance("USDC", wallet.address) == start


def test_the_payer_reads_why_in_spanish_and_the_record_stays_english(client):
    wallet = funded_wallet()
    order = order_for(wallet)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "es"

    _, response = pay(client, order, wallet, amount_base=due_base(order) - 1)

    assert "Este pago no sirve para este pedido (" in text(response)
    assert "USDT recibidos, " in text(response)
    deposit = Deposit.objects.get(order=order)
    assert deposit.reason.endswith(" due") and "received" in deposit.reason


def test_a_reverted_transaction_is_rejected(client):
    wallet = funded_wallet(usdt="0")
    order = order_for(wallet)
    _, response = pay(client, order, wallet)  # more USDT than the wallet holds: reverts
    assert_rejected(response, "failed on chain")


def test_an_unknown_hash_is_rejected(client):
    order = make_order()
    client.force_login(order.user)
    response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": "0x" + "ab" * 32})
    assert_rejected(response, "No transaction with this hash")


def test_a_malformed_hash_is_rejected(client):
    order = make_order()
    client.force_login(order.user)
    response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": "0x1234"})
    assert_rejected(response, "not a transaction hash")


def test_one_transaction_cannot_pay_two_orders(client):
    wallet = funded_wallet()
    first = order_for(wallet)
    tx, _ = pay(client, first, wallet)
    order_cancel(order_id=first.pk, user=first.user)
    second = make_order(user=first.user)

    response = client.post(f"/orders/{second.pk}/deposit/", {"tx_hash": tx})

    assert_rejected(response, "already paid another order")
    second.refresh_from_db()
    assert second.status == OrderStatus.PENDING_PAYMENT


def test_a_late_payment_is_returned(client):
    wallet = funded_wallet()
    order = order_for(wallet, token="USDC")
    start = balance("USDC", wallet.address)
    order_cancel(order_id=order.pk, user=order.user)

    _, response = pay(client, order, wallet)

    assert "already expired" in text(response)
    settle(Transfer.objects.get(purpose=Transfer.Purpose.RETURN))
    assert balance("USDC", wallet.address) == start


def test_nobody_else_can_report_a_deposit_for_an_order(client):
    order = make_order()
    client.force_login(make_user())
    response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": "0x" + "ab" * 32})
    assert response.status_code == 404


def test_reporting_a_deposit_needs_a_signed_in_user(client):
    order = make_order()
    response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": "0x" + "ab" * 32})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


def test_a_second_payment_for_a_paid_order_is_returned(pace, client):
    wallet = funded_wallet()
    order = order_for(wallet, token="USDC")
    pay(client, order, wallet)
    before = balance("USDC", wallet.address)

    _, response = pay(client, order, wallet)

    assert "already looking for an ally" in text(response)
    settle(Transfer.objects.get(purpose=Transfer.Purpose.RETURN))
    assert balance("USDC", wallet.address) == before


def test_an_unconfirmed_deposit_is_checked_again_in_the_background(
    client, settings, django_capture_on_commit_callbacks
):

    from orders.tasks import check_deposit
    from tests.helpers.chain import mine

    change_local_network(settings, confirmations=3)
    wallet = funded_wallet()
    order = order_for(wallet)

    tx = send(wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(order))
    client.force_login(order.user)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": tx})
    assert "waiting for the network to confirm it (1 of 3)" in text(response)
    assert len(queued) == 1  # the background check

    mine(2)
    check_deposit.apply(args=[str(order.pk), tx])  # what the worker runs

    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE


def test_a_payment_from_a_blocked_wallet_is_returned_to_it(client, admin_user):
    from audit.models import Action, Log
    from orders.blocking import wallet_block

    # given an order whose payer staff block before the payment (which cancels the order)
    wallet = funded_wallet()
    order = order_for(wallet)
    start = balance("USDT", wallet.address)
    wallet_block(wallet=wallet.address, reason="stolen funds", staff=admin_user)
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED

    # when the payment arrives and is reported
    _, response = pay(client, order, wallet)

    # then the payer is told, nothing is credited and the money goes back to the wallet, once
    assert response.status_code == 200
    assert "a wallet Kibo's staff blocked" in text(response)
    assert "being returned to the wallet that sent it" in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED and not hasattr(order, "escrow")
    deposit = Deposit.objects.get()
    assert deposit.outcome == Deposit.Outcome.RETURNED
    assert Log.objects.filter(action=Action.DEPOSIT_REJECTED, actor_wallet=wallet.address).exists()
    settle(Transfer.objects.get(purpose=Transfer.Purpose.RETURN, deposit=deposit))
    assert balance("USDT", wallet.address) == start


def test_reporting_the_same_pending_payment_again_queues_no_second_check(
    client, settings, django_capture_on_commit_callbacks
):
    import redis

    from kibo.celery import app
    from orders.tasks import check_deposit, check_deposit_once
    from tests.helpers.chain import mine

    change_local_network(settings, confirmations=3)
    wallet = funded_wallet()
    order = order_for(wallet)
    tx = send(wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(order))
    client.force_login(order.user)
    app.control.purge()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    # when the payer reports the payment three times while it waits for confirmations
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": tx})
        assert "waiting for the network to confirm it" in text(response)

    # then one check is queued on the chain's queue, not three
    assert broker.llen(settings.KIBO_CHAIN_QUEUE) == 1
    # and once that check is done, a new one may be queued again
    mine(2)
    check_deposit.apply(args=[str(order.pk), tx])
    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE
    assert check_deposit_once(order.pk, tx) and not check_deposit_once(order.pk, tx)
    app.control.purge()
