"""After a restore or a failover the sender pauses itself, and `escrow_recover` matches the
chain to the records before anything is sent again: a payout the chain has is recovered,
never signed twice; a deposit after the checkpoint is credited once."""

import pytest
from django.core.management import CommandError, call_command

from audit.models import Action, Log
from escrow import chain
from escrow.deposits import deposits_watch
from escrow.models import SenderState, Transfer
from escrow.networks import network_spec
from escrow.selectors import escrow_address
from escrow.sender import database_timeline, sender_paused
from escrow.signers import escrow_signer
from escrow.transfers import transfer_process, transfer_unhold
from orders.models import Order, OrderStatus
from tests.factories import wallet
from tests.helpers.chain import confirmed, funded_wallet, send, token_transfers_to
from tests.helpers.money import completed_order, due_base, order_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.usefixtures("chain")]


def sent_outside_the_records(*, token: str, to: str, amount_base: int) -> str:
    """What Kibo did after the restore point, which the restored records do not have: the
    escrow wallet signed and sent a transfer, and it was mined."""
    spec = network_spec("local")
    coin = spec.token(token)
    address = escrow_address()
    signed = chain.sign_transfer(
        "local",
        signer=escrow_signer(),
        token=coin,
        to=to,
        amount_base=amount_base,
        nonce=chain.nonce_of("local", address),
        gas=chain.estimate_transfer_gas("local", coin, to, amount_base, sender=address),
        fees=chain.suggested_fees("local"),
    )
    chain.broadcast("local", signed.raw_tx)
    confirmed(signed.tx_hash)
    return signed.tx_hash


def restored_from_another_timeline() -> None:
    """The records say the sender last sent on another timeline: a restore happened."""
    SenderState.objects.update_or_create(pk=1, defaults={"timeline": 0, "paused_because": ""})


def test_a_payout_sent_after_the_restore_point_is_recovered_not_paid_twice(capsys):
    # given a payout held in the records, and the watcher's checkpoint at the restore point
    _, ally, release = completed_order(confirm=False)
    deposits_watch(network="local")
    # and, after the restore point, the payout went out and a payer paid another order
    tx_hash = sent_outside_the_records(
        token=release.token, to=release.recipient, amount_base=int(release.amount_base)
    )
    payer = funded_wallet()
    unpaid = order_for(payer)
    confirmed(send(payer, to=escrow_address(), symbol="USDT", amount_base=due_base(unpaid)))
    restored_from_another_timeline()

    # when the payer says the shop was paid, the sender does not send: it is paused
    transfer_unhold(transfer_id=release.pk, by="payer")
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.PENDING
    assert "timeline 0" in sender_paused()
    assert token_transfers_to(ally.wallet_address) == 1

    # when staff run the recovery
    call_command("escrow_recover")

    # then the payout is the chain's transaction, settled; nobody was paid twice
    release.refresh_from_db()
    assert release.status == Transfer.Status.CONFIRMED and release.mined_tx_hash == tx_hash
    assert release.signed.get().tx_hash == tx_hash  # the chain's own bytes, not new ones
    assert token_transfers_to(ally.wallet_address) == 1
    assert Order.objects.get(pk=unpaid.pk).status == OrderStatus.AVAILABLE  # credited once
    output = capsys.readouterr().out
    assert "recovered  local nonce" in output and tx_hash in output
    assert "1 deposit(s) credited" in output and "clean: the sender sends again" in output
    state = SenderState.objects.get()
    assert state.paused_because == "" and state.timeline == database_timeline()
    actions = set(Log.objects.values_list("action", flat=True))
    assert {Action.SENDER_PAUSED, Action.TRANSFER_RECOVERED, Action.SENDER_RESUMED} <= actions

    # and sending again sends nothing more for it
    assert transfer_process(transfer_id=release.pk).status == Transfer.Status.CONFIRMED
    assert token_transfers_to(ally.wallet_address) == 1


def test_a_transaction_no_record_explains_keeps_the_sender_paused(capsys):
    deposits_watch(network="local")
    stranger = wallet()
    completed_order()  # the escrow holds tokens
    tx_hash = sent_outside_the_records(token="USDT", to=stranger, amount_base=1_000_000)
    restored_from_another_timeline()
    assert sender_paused()

    with pytest.raises(CommandError, match="the sender stays paused"):
        call_command("escrow_recover")

    output = capsys.readouterr().out
    assert "UNMATCHED" in output and tx_hash in output and "MISMATCH" in output
    assert sender_paused()
