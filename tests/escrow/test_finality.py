"""What makes a block final, per network: a depth, or the node's `safe` or `finalized` tag
(anvil, like a rollup's node, answers both: 32 and 64 blocks behind its head)."""

import environ
import pytest
from django.test import Client

from escrow import chain
from escrow.deposits import deposits_watch
from escrow.models import Deposit, Transfer
from escrow.networks import from_environment
from escrow.selectors import escrow_address
from escrow.transfers import transfer_process
from orders.models import OrderStatus
from orders.payments import deposit_verify
from tests.helpers.chain import funded_wallet, mine, send
from tests.helpers.money import completed_order, due_base, order_for
from tests.helpers.networks import change_local_network

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.usefixtures("chain")]


def test_the_final_block_follows_the_networks_rule(settings):
    mine(100)
    head = chain.head_block("local")
    change_local_network(settings, finality="depth", confirmations=3)
    assert chain.final_block("local") == head - 2
    change_local_network(settings, finality="safe")
    assert chain.final_block("local") == head - 32
    change_local_network(settings, finality="finalized")
    assert chain.final_block("local") == head - 64


def test_a_deposit_counts_once_its_block_is_safe(settings):
    change_local_network(settings, finality="safe")
    wallet = funded_wallet()
    order = order_for(wallet)
    tx = send(wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(order))

    # seen, not yet safe: the payer is told, the watcher records nothing
    check = deposit_verify(order=order, tx_hash=tx)
    assert check.state == "pending" and "waiting for the network to finalize it" in check.message
    deposits_watch(network="local")
    assert not Deposit.objects.exists()

    mine(31)
    assert deposit_verify(order=order, tx_hash=tx).state == "pending"
    mine(1)  # now 32 blocks on top: the node calls it safe

    assert deposit_verify(order=order, tx_hash=tx).state == "credited"
    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE


def test_a_payout_settles_once_its_block_is_finalized(settings):
    _, _, release = completed_order(confirm=True)
    change_local_network(settings, finality="finalized")
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.SIGNED
    mine(63)
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.SIGNED
    mine(1)
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.CONFIRMED


def test_a_finality_rule_is_one_of_three(monkeypatch):
    monkeypatch.setenv("KIBO_FINALITY_BASE", "safe")
    assert from_environment(environ.Env())["base"].finality == "safe"
    monkeypatch.setenv("KIBO_FINALITY_BASE", "soon")
    with pytest.raises(ValueError, match="KIBO_FINALITY_BASE must be one of depth, safe"):
        from_environment(environ.Env())


def test_the_payers_page_says_what_it_waits_for(settings):
    change_local_network(settings, finality="finalized")
    wallet = funded_wallet()
    order = order_for(wallet)
    tx = send(wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(order))
    client = Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_HX_REQUEST="true")
    client.force_login(order.user)
    response = client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": tx})
    assert "waiting for the network to finalize it" in response.content.decode()
