"""What the escrow may spend: its balance less what signed transfers will still take from it."""

import logging
import os

import pytest

from audit.models import Action, Log
from devtools.localchain import mint_local
from escrow.amounts import to_base_units
from escrow.models import Deposit, SignedTransaction, Transfer
from escrow.selectors import escrow_address, escrow_funds, reconcile
from escrow.transfers import transfer_create, transfer_process, transfers_process_unfinished
from kibo.services import config_set
from orders.models import Order, OrderStatus
from orders.payments import deposit_verify
from orders.services import order_expire
from tests.factories import expire_timer, tx_hash, wallet
from tests.helpers.chain import (
    balance,
    confirmed,
    funded_wallet,
    mine,
    rpc,
    send,
    set_token_balance,
    token_transfers_to,
)
from tests.helpers.chain import token as token_spec
from tests.helpers.money import completed_order, due_base, order_for
from tests.helpers.networks import change_local_network
from tests.helpers.processes import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("chain"),
]  # money moving on the chain, settled block by block


def with_confirmations(settings, confirmations: int) -> None:
    change_local_network(settings, confirmations=confirmations)


@pytest.mark.django_db
def test_a_payout_mined_but_not_yet_confirmed_does_not_block_the_next(settings):
    # given two completed orders, and an escrow holding exactly their two deposits
    with_confirmations(settings, 3)
    first_order, first_ally, first = completed_order()
    second_order, second_ally, second = completed_order()
    escrow = escrow_address()
    deposits = sum(
        to_base_units(order.amount_crypto, 6, round_up=True)
        for order in (first_order, second_order)
    )
    set_token_balance("USDT", escrow, deposits)
    rpc("evm_setAutomine", False)
    try:
        # and the first payout is mined, with 1 of its 3 confirmations
        transfer_process(transfer_id=first.pk)
        mine(1)
        assert transfer_process(transfer_id=first.pk).status == Transfer.Status.SIGNED

        # when the second payout is processed
        second = transfer_process(transfer_id=second.pk)
    finally:
        rpc("evm_setAutomine", True)

    # then it is signed, not failed; and once confirmed, each ally is paid once
    assert second.status == Transfer.Status.SIGNED, second.last_error
    mine(3)
    for release in (first, second):
        assert transfer_process(transfer_id=release.pk).status == Transfer.Status.CONFIRMED
    for order, ally in ((first_order, first_ally), (second_order, second_ally)):
        assert balance("USDT", ally.wallet_address) == to_base_units(order.payout_crypto, 6)
        assert token_transfers_to(ally.wallet_address) == 1


def funds_now(*symbols: str, excluding=None):
    from escrow.networks import network_spec

    spec = network_spec("local")
    coins = [spec.gas_coin if symbol == "gas" else token_spec(symbol) for symbol in symbols]
    return escrow_funds(network="local", address=escrow_address(), coins=coins, excluding=excluding)


def gas_promise(transfer: Transfer) -> int:
    top_fee = max(int(s.max_fee_per_gas) for s in transfer.signed.filter(nonce=transfer.nonce))
    return int(transfer.gas) * top_fee


@pytest.mark.django_db
def test_a_transfer_signed_but_not_mined_is_promised_its_amount_and_its_gas():
    # given nothing signed, the wallet's whole balance is free
    _, _, release = completed_order()
    before = funds_now("USDT", "gas")
    assert before["USDT"].promised == 0 and before["USDT"].free == before["USDT"].held

    # when the payout is signed and waits in the pool
    rpc("evm_setAutomine", False)
    try:
        transfer_process(transfer_id=release.pk)
        release.refresh_from_db()
        during = funds_now("USDT", "gas")
        without_it = funds_now("USDT", "gas", excluding=release.pk)
    finally:
        rpc("evm_setAutomine", True)

    # then the balance is unchanged, and the payout and its gas are spoken for
    assert during["USDT"].held == before["USDT"].held
    assert during["USDT"].promised == int(release.amount_base)
    assert during["ETH"].promised == gas_promise(release) > 0
    assert without_it["USDT"].promised == 0 and without_it["ETH"].promised == 0


@pytest.mark.django_db
def test_a_mined_transfer_is_not_promised_again_before_it_is_confirmed(settings):
    with_confirmations(settings, 3)
    _, _, release = completed_order()
    held_before = funds_now("USDT")["USDT"].held

    transfer_process(transfer_id=release.pk)  # mined at once, 1 of 3 confirmations

    release.refresh_from_db()
    assert release.status == Transfer.Status.SIGNED
    funds = funds_now("USDT", "gas")["USDT"]
    assert funds.held == held_before - int(release.amount_base)
    assert funds.promised == 0 and funds.free == funds.held


@pytest.mark.django_db
def test_a_replaced_transfer_is_promised_once_and_not_at_all_once_an_attempt_mined(settings):
    # given a payout signed twice at one nonce (the first attempt stuck, then replaced)
    _, _, release = completed_order()
    rpc("evm_setAutomine", False)
    try:
        transfer_process(transfer_id=release.pk)
        rpc("anvil_dropTransaction", SignedTransaction.objects.get(transfer=release).tx_hash)
        settings.KIBO_TRANSFER_STUCK_SECONDS = 0
        transfer_process(transfer_id=release.pk)
        release.refresh_from_db()
        assert release.signed.filter(nonce=release.nonce).count() == 2

        # then its amount is promised once, and its gas at the higher fee
        pooled = funds_now("USDT", "gas")
        assert pooled["USDT"].promised == int(release.amount_base)
        assert pooled["ETH"].promised == gas_promise(release)
        assert gas_promise(release) > int(release.gas) * int(release.signed.first().max_fee_per_gas)
    finally:
        rpc("evm_setAutomine", True)

    # when one attempt is mined, then nothing is promised any more
    mine(1)
    assert Transfer.objects.get(pk=release.pk).status == Transfer.Status.SIGNED
    mined = funds_now("USDT", "gas")
    assert mined["USDT"].promised == 0 and mined["ETH"].promised == 0


@pytest.mark.django_db
def test_a_native_coin_transfer_promises_its_amount_and_its_gas_from_the_gas_coin():
    _, _, release = completed_order(symbol="ETH")
    rpc("evm_setAutomine", False)
    try:
        transfer_process(transfer_id=release.pk)
        release.refresh_from_db()
        funds = funds_now("ETH", "gas")
    finally:
        rpc("evm_setAutomine", True)
    assert list(funds) == ["ETH"]  # on this network the gas coin is ETH itself
    assert funds["ETH"].promised == int(release.amount_base) + gas_promise(release)


def owed_return(symbol: str, amount_base: int) -> Transfer:
    """Money Kibo owes back to a stranger, recorded as the deposit watcher would."""
    stranger = wallet()
    deposit = Deposit.objects.create(
        network="local",
        tx_hash=tx_hash(),
        log_index=0,
        block_number=1,
        block_hash=tx_hash(),
        token=symbol,
        sender=stranger,
        amount_base=amount_base,
        outcome=Deposit.Outcome.RETURNED,
        reason="test",
    )
    return transfer_create(
        purpose=Transfer.Purpose.RETURN,
        deposit_id=deposit.pk,
        network="local",
        token=symbol,
        recipient=stranger,
        amount_base=amount_base,
    )


def fund_escrow(symbol: str, amount_base: int) -> None:
    """Staff top the escrow wallet up from the operator's treasury wallet."""
    treasury = funded_wallet(usdt="0", usdc="0")
    mint_local(
        os.environ["KIBO_RPC_URL_LOCAL"],
        token_address=token_spec(symbol).address,
        to=treasury.address,
        amount_base=amount_base,
    )
    config_set(key="ESCROW_TREASURY_ADDRESSES", value=treasury.address)
    confirmed(send(treasury, to=escrow_address(), symbol=symbol, amount_base=amount_base))


@pytest.mark.django_db
def test_a_transfer_the_escrow_cannot_cover_waits_tells_staff_once_and_goes_out_when_funded(
    caplog,
):
    # given the escrow holds 2 USDC and owes 5
    set_token_balance("USDC", escrow_address(), 2 * 10**6)
    transfer = owed_return("USDC", 5 * 10**6)

    # when the sweep runs again and again
    with caplog.at_level(logging.ERROR, logger="escrow.transfers"):
        for _ in range(3):
            transfers_process_unfinished()

    # then it waits with its shortfall, nothing signed, and staff were told once
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.WAITING
    assert (transfer.shortfall_coin, transfer.shortfall_base) == ("USDC", 3 * 10**6)
    assert "3.00 USDC short" in transfer.last_error
    assert transfer.nonce is None and not transfer.signed.exists()
    assert len([r for r in caplog.records if "waiting for funds" in r.getMessage()]) == 1
    assert Log.objects.filter(action=Action.TRANSFER_WAITING).count() == 1

    # when the escrow is funded, then the next sweep sends it, once
    fund_escrow("USDC", 3 * 10**6)
    before = balance("USDC", transfer.recipient)
    transfers_process_unfinished()
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.CONFIRMED
    assert transfer.shortfall_base is None and transfer.last_error == ""
    assert balance("USDC", transfer.recipient) - before == 5 * 10**6
    assert token_transfers_to(transfer.recipient) == 1


@pytest.mark.django_db
def test_a_payout_waits_rather_than_spend_what_a_signed_payout_will_take():
    # given a signed, unmined payout that takes most of the escrow's USDT
    _, _, first = completed_order()
    _, _, second = completed_order()
    escrow = escrow_address()
    rpc("evm_setAutomine", False)
    try:
        transfer_process(transfer_id=first.pk)
        set_token_balance("USDT", escrow, int(first.amount_base) + int(second.amount_base) - 1)

        # when a second payout is processed, then it waits one base unit short
        waiting = transfer_process(transfer_id=second.pk)
    finally:
        rpc("evm_setAutomine", True)
    assert waiting.status == Transfer.Status.WAITING and waiting.shortfall_base == 1
    assert not waiting.signed.exists()


@pytest.mark.django_db
def test_a_payout_short_of_gas_waits_for_the_gas_coin():
    _, _, release = completed_order()
    rpc("anvil_setBalance", escrow_address(), hex(1000))

    waiting = transfer_process(transfer_id=release.pk)

    assert waiting.status == Transfer.Status.WAITING and waiting.shortfall_coin == "ETH"
    assert not waiting.signed.exists()
    rpc("anvil_setBalance", escrow_address(), hex(10**18))
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.CONFIRMED


def settled(*transfers: Transfer) -> bool:
    done = Transfer.objects.filter(pk__in=[t.pk for t in transfers])
    return done.filter(status=Transfer.Status.CONFIRMED).count() == len(transfers)


@pytest.mark.slow  # a real worker and beat
@pytest.mark.django_db(transaction=True)
def test_a_shortfall_is_sent_by_itself_once_the_escrow_is_funded(pace, celery_worker, celery_beat):
    # given a real worker and beat, and a payout the escrow cannot cover
    celery_worker()
    celery_beat()
    set_token_balance("USDC", escrow_address(), 0)
    transfer = owed_return("USDC", 4 * 10**6)
    assert wait_for(
        lambda: Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.WAITING, seconds=30
    )

    # when staff fund the escrow wallet, then beat's sweep sends it, once, with no one's help
    fund_escrow("USDC", 4 * 10**6)
    assert wait_for(lambda: settled(transfer), seconds=60)
    assert token_transfers_to(transfer.recipient) == 1
    assert Log.objects.filter(action=Action.TRANSFER_WAITING).count() == 1


def paid_and_expired(user) -> Transfer:
    """An order paid on chain whose timer ran out: its refund is queued."""
    order = order_for(user)
    tx = send(user, to=escrow_address(), symbol="USDT", amount_base=due_base(order))
    confirmed(tx)
    assert deposit_verify(order=order, tx_hash=tx).state == "credited"
    expire_timer(order)
    order_expire(order_id=order.pk)
    return Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pace", ["mainnet"], indirect=True)
def test_payouts_and_refunds_queued_back_to_back_all_settle_once(pace, celery_worker, celery_beat):
    """The scenario measured at mainnet settings, where transfers overlap: none may fail."""
    # given a worker of two and beat, and an escrow holding only what these orders pay in
    celery_worker(concurrency=2)
    celery_beat()
    set_token_balance("USDT", escrow_address(), 0)

    # when two orders are completed and two expire, a moment apart
    releases = [completed_order() for _ in range(2)]
    users = [funded_wallet() for _ in range(2)]
    start = {user.address: balance("USDT", user.address) for user in users}
    refunds = [paid_and_expired(user) for user in users]

    # then each settles exactly once, and none failed or waited for funds
    transfers = [release for _, _, release in releases] + refunds
    assert wait_for(lambda: settled(*transfers), seconds=90), list(
        Transfer.objects.values_list("purpose", "status", "last_error")
    )
    assert not Log.objects.filter(action__in=[Action.TRANSFER_FAILED, Action.TRANSFER_WAITING])
    for order, ally, _ in releases:
        assert balance("USDT", ally.wallet_address) == to_base_units(order.payout_crypto, 6)
        assert token_transfers_to(ally.wallet_address) == 1
    for user in users:
        assert balance("USDT", user.address) == start[user.address]
    assert Order.objects.filter(status=OrderStatus.REFUNDED).count() == 2
    assert all(line.ok for line in reconcile())
