import pytest

from escrow.amounts import to_base_units
from escrow.chain import ChainUnavailable
from escrow.models import SignedTransaction, Transfer
from escrow.selectors import escrow_address
from escrow.transfers import transfer_process, transfer_retry
from tests.helpers.chain import (
    balance,
    mine,
    rpc,
    set_token_balance,
    token_transfers_to,
)
from tests.helpers.money import completed_order
from tests.helpers.networks import change_local_network
from tests.helpers.threads import at_once

pytestmark = [
    pytest.mark.slow,
    pytest.mark.money,
    pytest.mark.usefixtures("chain"),
]  # money moving on the chain, settled block by block


@pytest.mark.django_db
def test_a_stuck_transaction_is_replaced_with_the_same_nonce_and_settles_once(settings):
    order, ally, release = completed_order()
    before = balance("USDT", ally.wallet_address)
    rpc("evm_setAutomine", False)
    try:
        transfer_process(transfer_id=release.pk)  # signed and sent, not mined
        first = SignedTransaction.objects.get(transfer=release)
        rpc("anvil_dropTransaction", first.tx_hash)  # and then lost by the node

        settings.KIBO_TRANSFER_STUCK_SECONDS = 0  # as if minutes had passed
        transfer_process(transfer_id=release.pk)  # resent, found stuck, replaced
    finally:
        rpc("evm_setAutomine", True)
    mine(1)
    transfer_process(transfer_id=release.pk)

    release.refresh_from_db()
    signed = list(release.signed.all())
    assert len(signed) >= 2 and {s.nonce for s in signed} == {release.nonce}
    assert signed[-1].max_priority_fee_per_gas >= signed[0].max_priority_fee_per_gas * 11 / 10
    assert release.status == Transfer.Status.CONFIRMED
    assert release.mined_tx_hash in {s.tx_hash for s in signed}
    assert balance("USDT", ally.wallet_address) - before == to_base_units(order.payout_crypto, 6)
    assert token_transfers_to(ally.wallet_address) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_processing_one_transfer_at_once_send_it_once():
    _, ally, release = completed_order()

    def work():
        transfer_process(transfer_id=release.pk)

    errors = at_once(work, work)
    transfer_process(transfer_id=release.pk)

    assert not errors
    release.refresh_from_db()
    assert release.status == Transfer.Status.CONFIRMED and release.signed.count() == 1
    assert token_transfers_to(ally.wallet_address) == 1


@pytest.mark.django_db
def test_an_unreachable_node_leaves_the_transfer_waiting_until_it_answers(settings):
    _, _, release = completed_order(symbol="ETH")
    working = settings.KIBO_NETWORKS
    change_local_network(settings, rpc_urls=("http://127.0.0.1:9",))  # nothing listens there

    with pytest.raises(ChainUnavailable):
        transfer_process(transfer_id=release.pk)
    release.refresh_from_db()
    assert release.status == Transfer.Status.PENDING and not release.signed.exists()

    settings.KIBO_NETWORKS = working
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.CONFIRMED


@pytest.mark.django_db
def test_a_second_rpc_url_is_used_when_the_first_is_down(settings):
    _, _, release = completed_order()
    working = settings.KIBO_NETWORKS["local"].rpc_urls
    change_local_network(settings, rpc_urls=("http://127.0.0.1:9", *working))
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.CONFIRMED


@pytest.mark.django_db
def test_a_transfer_that_reverted_is_retried_with_a_new_nonce_and_pays_once():
    # given a payout whose transaction reverts on chain (the escrow emptied meanwhile)
    order, ally, release = completed_order(symbol="USDC")
    escrow = escrow_address()
    held = balance("USDC", escrow)
    rpc("evm_setAutomine", False)
    try:
        transfer_process(transfer_id=release.pk)
        set_token_balance("USDC", escrow, 0)
    finally:
        rpc("evm_setAutomine", True)
    mine(1)
    failed = transfer_process(transfer_id=release.pk)
    assert failed.status == Transfer.Status.FAILED and "reverted" in failed.last_error
    first_nonce = SignedTransaction.objects.get(transfer=release).nonce

    # when the money is back and staff retry
    set_token_balance("USDC", escrow, held)
    transfer_retry(transfer_id=release.pk)
    settled = transfer_process(transfer_id=release.pk)

    # then it goes through once, with a new nonce, whatever the old receipt said
    assert settled.status == Transfer.Status.CONFIRMED
    assert settled.nonce != first_nonce and settled.signed.count() == 2
    assert token_transfers_to(ally.wallet_address) == 1
    assert balance("USDC", ally.wallet_address) == to_base_units(order.payout_crypto, 6)


@pytest.mark.django_db
def test_a_retry_never_pays_again_what_already_went_through():
    # given a payout sent, then marked FAILED while its transaction could still mine
    _, ally, release = completed_order()
    rpc("evm_setAutomine", False)
    try:
        transfer_process(transfer_id=release.pk)
    finally:
        rpc("evm_setAutomine", True)
    Transfer.objects.filter(pk=release.pk).update(status=Transfer.Status.FAILED)
    mine(1)  # ... and it did mine

    # when staff retry
    transfer_retry(transfer_id=release.pk)
    settled = transfer_process(transfer_id=release.pk)

    # then the mined transaction settles it; nothing is signed or sent again
    assert settled.status == Transfer.Status.CONFIRMED and settled.signed.count() == 1
    assert token_transfers_to(ally.wallet_address) == 1
