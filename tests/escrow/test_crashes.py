"""Kill the worker (SIGKILL, no cleanup) at each point of a transfer; exactly one payout."""

import pytest

from escrow.amounts import to_base_units
from escrow.chain import transaction_known
from escrow.models import SignedTransaction, Transfer
from escrow.tasks import process_transfer
from orders.disputes import dispute_decide, dispute_open
from orders.models import Order, OrderStatus
from tests.helpers.chain import balance, token_transfers_to
from tests.helpers.money import completed_order
from tests.helpers.processes import wait_for

pytestmark = [
    pytest.mark.slow,  # workers killed and restarted
    pytest.mark.money,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("chain"),
]


def confirmed(release) -> bool:
    return Transfer.objects.get(pk=release.pk).status == Transfer.Status.CONFIRMED


@pytest.mark.parametrize(
    ("failpoint", "signed_after_crash", "sent_after_crash"),
    [
        ("transfer-after-nonce", 0, False),
        ("transfer-after-store", 1, False),
        ("transfer-after-broadcast", 1, True),
    ],
)
def test_a_worker_killed_mid_transfer_resumes_and_pays_exactly_once(
    pace, celery_worker, celery_beat, failpoint, signed_after_crash, sent_after_crash
):
    # given a completed order whose payout is queued, and a worker that will die mid-way
    order, ally, release = completed_order()
    before = balance("USDT", ally.wallet_address)
    doomed = celery_worker(failpoint=failpoint)

    # when it takes the transfer, then it dies at the failpoint
    doomed.wait(timeout=60)
    assert doomed.returncode != 0
    signed = SignedTransaction.objects.filter(transfer=release)
    assert signed.count() == signed_after_crash
    if signed_after_crash:
        assert transaction_known("local", signed.get().tx_hash) is sent_after_crash

    # when a healthy worker and beat take over, then the payout happens, once
    celery_worker()
    celery_beat()
    assert wait_for(lambda: confirmed(release), seconds=60)
    assert balance("USDT", ally.wallet_address) - before == to_base_units(order.payout_crypto, 6)
    assert token_transfers_to(ally.wallet_address) == 1
    assert SignedTransaction.objects.filter(transfer=release).count() == 1


def test_the_same_transfer_delivered_twice_at_once_pays_once(celery_worker):
    _, ally, release = completed_order()
    celery_worker(concurrency=2)
    process_transfer.delay(str(release.pk))
    process_transfer.delay(str(release.pk))

    assert wait_for(lambda: confirmed(release), seconds=60)
    assert token_transfers_to(ally.wallet_address) == 1
    assert SignedTransaction.objects.filter(transfer=release).count() == 1


@pytest.mark.parametrize("failpoint", ["transfer-after-store", "transfer-after-broadcast"])
def test_a_worker_killed_while_a_dispute_is_upheld_refunds_the_payer_once(
    celery_worker, celery_beat, admin_user, failpoint
):
    # given a payer who disputes a completed order, and a worker that will die mid-refund
    order, ally, release = completed_order(confirm=False)
    payer = order.user.wallet_address
    dispute = dispute_open(order_id=order.pk, user=order.user, statement="Nothing arrived.")
    before, received_before = balance("USDT", payer), token_transfers_to(payer)
    doomed = celery_worker(failpoint=failpoint)

    # when staff uphold the dispute, the worker takes the refund and dies at the failpoint
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="No record.")
    doomed.wait(timeout=60)
    assert doomed.returncode != 0

    # then a healthy worker and beat refund the payer, once, and never pay the ally
    celery_worker()
    celery_beat()
    assert wait_for(
        lambda: Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED, seconds=60
    )
    assert balance("USDT", payer) - before == to_base_units(order.amount_crypto, 6)
    assert token_transfers_to(payer) == received_before + 1
    refund = Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)
    assert SignedTransaction.objects.filter(transfer=refund).count() == 1
    assert not SignedTransaction.objects.filter(transfer=release).exists()
    assert token_transfers_to(ally.wallet_address) == 0
