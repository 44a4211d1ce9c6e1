"""A completed order's payout is held while the payer may still say the shop was not paid:
a held release is never signed; it goes out when the hold ends or the payer confirms."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Action, Log
from escrow.amounts import to_base_units
from escrow.models import Transfer
from escrow.transfers import transfer_process, transfer_unhold, transfers_process_unfinished
from kibo.services import config_set
from tests.helpers.chain import balance
from tests.helpers.money import completed_order, settle

pytestmark = [
    pytest.mark.slow,  # money moving on the chain, settled block by block
    pytest.mark.django_db,
    pytest.mark.usefixtures("chain"),
]


@pytest.fixture
def hold():
    config_set(key="RELEASE_HOLD_MINUTES", value="10")


def unheld(transfer) -> list[dict]:
    return [
        log.metadata
        for log in Log.objects.filter(action=Action.RELEASE_UNHELD, order=transfer.order)
    ]


def test_a_held_release_is_never_signed_until_its_hold_ends(hold):
    # given a completed order, its payout held for ten minutes
    order, ally, release = completed_order(confirm=False)
    assert release.status == Transfer.Status.HELD
    assert timezone.now() + timedelta(minutes=9) < release.held_until
    before = balance("USDT", ally.wallet_address)

    # when the worker and beat push it before the hold ends, nothing is signed
    transfer_process(transfer_id=release.pk)
    transfers_process_unfinished()
    release.refresh_from_db()
    assert release.status == Transfer.Status.HELD and not release.signed.exists()

    # then, once the hold has ended, beat lets it go and it pays the payout once
    Transfer.objects.filter(pk=release.pk).update(held_until=timezone.now())
    transfers_process_unfinished()
    assert settle(release).status == Transfer.Status.CONFIRMED
    assert balance("USDT", ally.wallet_address) - before == to_base_units(order.payout_crypto, 6)
    assert release.signed.count() == 1 and unheld(release) == [
        {"transfer": str(release.pk), "by": "timer"}
    ]


def test_the_payer_confirming_lets_the_release_go_at_once_once(hold):
    order, _, release = completed_order(confirm=False)

    transfer_unhold(transfer_id=release.pk, by="payer", actor_wallet=order.user.wallet_address)
    transfer_unhold(transfer_id=release.pk, by="payer", actor_wallet=order.user.wallet_address)

    release.refresh_from_db()
    assert release.status == Transfer.Status.PENDING and release.held_until is None
    assert unheld(release) == [{"transfer": str(release.pk), "by": "payer"}]
    assert settle(release).status == Transfer.Status.CONFIRMED


def test_without_a_hold_the_release_goes_out_at_once():
    config_set(key="RELEASE_HOLD_MINUTES", value="0")
    config_set(key="RELEASE_HOLD_MINUTES_NEW_ALLY", value="0")
    _, _, release = completed_order(confirm=False)
    assert release.status == Transfer.Status.PENDING and release.held_until is None
