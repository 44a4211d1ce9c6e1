import io
import os
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from devtools.localchain import load_artifact, mint_local
from escrow.deposits import deposits_watch
from escrow.models import Deposit, Transfer
from escrow.selectors import escrow_address, reconcile
from escrow.transfers import transfer_process, transfers_process_unfinished
from orders.models import Order
from orders.services import order_cancel, order_complete, order_confirm_paid, order_take
from tests.factories import make_ally, png_upload
from tests.helpers.chain import ETHER, funded_wallet, token, w3
from tests.helpers.money import completed_order, due_base, order_for, pay

pytestmark = [
    pytest.mark.slow,  # money moving on the chain, settled block by block
    pytest.mark.django_db,
    pytest.mark.usefixtures("chain"),
]


def reconcile_output() -> str:
    out = io.StringIO()
    call_command("escrow_reconcile", stdout=out)
    return out.getvalue()


def test_escrow_reconciles_after_payouts_refunds_and_returns(client):
    # given an order paid out, one refunded, and an over-payment partly returned
    wallets = [funded_wallet() for _ in range(3)]
    paid_out, refunded, overpaid = (
        order_for(wallet, token=symbol)
        for wallet, symbol in zip(wallets, ("USDT", "ETH", "USDC"), strict=True)
    )
    pay(client, paid_out, wallets[0])
    pay(client, refunded, wallets[1])
    pay(client, overpaid, wallets[2], amount_base=due_base(overpaid) + 123)
    ally = make_ally()
    order_take(order_id=paid_out.pk, ally=ally)
    order_complete(order_id=paid_out.pk, ally=ally, proof=png_upload())
    order_confirm_paid(order_id=paid_out.pk, user=paid_out.user)
    order_cancel(order_id=refunded.pk, user=refunded.user)

    # when every transfer has gone out, then the books match the chain
    transfers_process_unfinished()
    output = reconcile_output()
    assert "Escrow reconciles; nothing owed is stuck." in output and "MISMATCH" not in output
    assert "local           USDT" in output


def test_money_the_records_do_not_explain_is_a_mismatch():
    mint_local(
        os.environ["KIBO_RPC_URL_LOCAL"],
        token_address=token("USDC").address,
        to=escrow_address(),
        amount_base=1,
    )
    with pytest.raises(CommandError, match="do not match"):
        reconcile_output()


def reconcile_refusal() -> tuple[str, str]:
    """Run the command expecting it to fail; its output and its closing error."""
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("escrow_reconcile", stdout=out)
    return out.getvalue(), str(refused.value)


def minutes_ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


def test_a_completed_order_whose_payout_is_not_confirmed_in_time_is_stuck():
    # given a completed order whose payout is queued: fine for now
    order, _, release = completed_order()
    assert "nothing owed is stuck" in reconcile_output()

    # when half an hour passes and the payout is still not confirmed
    Order.objects.filter(pk=order.pk).update(completed_at=minutes_ago(31))

    # then reconcile fails and names the order and its transfer's state
    output, error = reconcile_refusal()
    assert f"STUCK    order {order.pk}: completed at" in output
    assert "the ally's payout is not confirmed: its release transfer is PENDING" in output
    assert "0 balance(s) do not match the records; 1 obligation(s) are stuck" in error

    # and once it is confirmed, it is not
    transfer_process(transfer_id=release.pk)
    assert "nothing owed is stuck" in reconcile_output()


def test_a_payout_held_for_the_payer_is_not_stuck_until_its_hold_ends():
    from kibo.services import config_set

    # given a completed order whose payout is held longer than the stuck threshold
    config_set(key="RELEASE_HOLD_MINUTES", value="60")
    order, _, release = completed_order(confirm=False)
    Order.objects.filter(pk=order.pk).update(completed_at=minutes_ago(31))
    assert "nothing owed is stuck" in reconcile_output()

    # when the hold has ended and the payout is still not confirmed, it is stuck
    Transfer.objects.filter(pk=release.pk).update(held_until=timezone.now())
    output, _ = reconcile_refusal()
    assert "its release transfer is HELD" in output


def test_an_expired_order_still_holding_its_deposit_is_stuck(client):
    wallet = funded_wallet()
    order = order_for(wallet)
    pay(client, order, wallet)
    order_cancel(order_id=order.pk, user=order.user)
    Order.objects.filter(pk=order.pk).update(updated_at=minutes_ago(45))

    output, _ = reconcile_refusal()

    assert f"STUCK    order {order.pk}: expired at" in output
    assert "the refund is not confirmed: its refund transfer is PENDING" in output


def test_the_threshold_is_staff_configured(client):
    from kibo.services import config_set

    order, _, _ = completed_order()
    Order.objects.filter(pk=order.pk).update(completed_at=minutes_ago(20))
    assert "nothing owed is stuck" in reconcile_output()  # 30 minutes by default
    config_set(key="RECONCILE_STUCK_MINUTES", value="15")
    assert f"order {order.pk}" in reconcile_refusal()[0]


@pytest.mark.parametrize("status", ["FAILED", "WAITING"])
def test_a_failed_or_waiting_transfer_is_stuck_at_once(status):
    order, _, release = completed_order()
    fields = {"last_error": "the node predicts this transfer would fail"}
    if status == "WAITING":
        fields = {"shortfall_base": 5, "shortfall_coin": "USDT", "last_error": "waiting for funds"}
    Transfer.objects.filter(pk=release.pk).update(status=status, **fields)

    output, error = reconcile_refusal()

    assert f"STUCK    transfer {release.pk}: the release for order {order.pk}" in output
    assert f"is {status} ({fields['last_error']})" in output
    assert "1 obligation(s) are stuck" in error


def test_gas_coin_sent_by_a_contracts_internal_call_shows_as_a_surplus_not_a_failure():
    # given a smart-contract wallet holding 2 ETH
    owner = funded_wallet(usdt="0", usdc="0")
    web3 = w3()
    artifact = load_artifact("SmartWallet")
    factory = web3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deploy = factory.constructor().build_transaction(
        {
            "from": owner.address,
            "value": 2 * ETHER,
            "nonce": web3.eth.get_transaction_count(owner.address),
            "chainId": 31337,
        }
    )
    contract_address = web3.eth.wait_for_transaction_receipt(
        web3.eth.send_raw_transaction(owner.sign_transaction(deploy).raw_transaction)
    )["contractAddress"]
    surplus_before = next(line for line in reconcile() if line.token == "ETH").surplus

    # when it pays 1 ETH into escrow through an internal call
    contract = web3.eth.contract(address=contract_address, abi=artifact["abi"])
    payment = contract.functions.pay(escrow_address(), ETHER).build_transaction(
        {
            "from": owner.address,
            "nonce": web3.eth.get_transaction_count(owner.address),
            "chainId": 31337,
        }
    )
    web3.eth.wait_for_transaction_receipt(
        web3.eth.send_raw_transaction(owner.sign_transaction(payment).raw_transaction)
    )
    deposits_watch(network="local")

    # then the watcher did not see it, and reconcile shows it as a surplus and still passes
    assert not Deposit.objects.exists()
    line = next(line for line in reconcile() if line.token == "ETH")
    assert line.ok and line.surplus - surplus_before == ETHER
    output = reconcile_output()
    assert "warning  local           ETH" in output and "internal call" in output
