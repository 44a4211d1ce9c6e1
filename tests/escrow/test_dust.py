"""Dust cannot drain the escrow's gas: what is below RETURN_MIN_<TOKEN> is kept for staff,
and returns, however many, never stand in front of a payout or a refund."""

import time

import pytest
from django.test import Client

from audit.models import Action, Log
from escrow.deposits import deposits_watch
from escrow.models import Deposit, Transfer
from escrow.selectors import escrow_address
from kibo.celery import app
from tests.helpers.chain import balance, funded_wallet, send
from tests.helpers.money import completed_order, due_base, order_for, pay, settle
from tests.helpers.processes import wait_for

pytestmark = [
    pytest.mark.slow,  # money moving on the chain
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("chain"),
]


def test_dust_from_a_stranger_is_kept_for_staff_who_may_return_it(admin_user):
    # given a stranger who sends 0.10 USDT (below RETURN_MIN_USDT, 0.50) to escrow
    stranger = funded_wallet()
    start = balance("USDT", stranger.address)
    send(stranger, to=escrow_address(), symbol="USDT", amount_base=100_000)

    # when the watcher records it, nothing is returned automatically
    deposits_watch(network="local")
    deposit = Deposit.objects.get(sender=stranger.address)
    assert deposit.kept_base == 100_000 and deposit.outcome == Deposit.Outcome.RETURNED
    assert not Transfer.objects.filter(purpose=Transfer.Purpose.RETURN).exists()

    # staff see it on the console and in the admin's filter
    staff = Client()
    staff.force_login(admin_user)
    console = staff.get("/admin/dashboard/").content.decode()
    assert "1 deposit, 0.10 USDT on local" in console
    listed = staff.get("/admin/escrow/deposit/", {"kept": "waiting"}).content.decode()
    assert stranger.address in listed

    # and return it by hand, once however often they click, audited
    selected = {"action": "return_kept", "_selected_action": [deposit.pk]}
    staff.post("/admin/escrow/deposit/", selected)
    staff.post("/admin/escrow/deposit/", selected)
    returned = Transfer.objects.get(purpose=Transfer.Purpose.RETURN)
    assert returned.amount_base == 100_000 and returned.recipient == stranger.address
    entry = Log.objects.get(action=Action.KEPT_DEPOSIT_RETURNED)
    assert entry.actor_wallet == admin_user.wallet_address
    settle(returned)
    assert balance("USDT", stranger.address) == start
    assert "No dust kept." in staff.get("/admin/dashboard/").content.decode()


def test_the_small_excess_of_an_over_payment_is_kept():
    wallet = funded_wallet()
    order = order_for(wallet, token="USDT")
    pay(Client(HTTP_HX_REQUEST="true"), order, wallet, amount_base=due_base(order) + 1)
    deposit = Deposit.objects.get(order=order)
    assert deposit.outcome == Deposit.Outcome.CREDITED and deposit.kept_base == 1
    assert not Transfer.objects.filter(purpose=Transfer.Purpose.RETURN).exists()


FLOOD = 30


def test_a_flood_of_returns_does_not_delay_a_payout(celery_worker, celery_beat):
    # given thirty transfers into escrow that pay no order, each to be returned
    app.control.purge()
    strangers = [funded_wallet() for _ in range(3)]
    for n in range(FLOOD):
        send(strangers[n % 3], to=escrow_address(), symbol="USDT", amount_base=1_000_000)
    deposits_watch(network="local")
    returns = Transfer.objects.filter(purpose=Transfer.Purpose.RETURN)
    assert returns.count() == FLOOD

    # and then a payout the payer confirmed
    _, _, release = completed_order(confirm=True)

    # when a worker starts on them, with beat's sweep (a return held back while two are in
    # flight is sent by the sweep, as in production)
    started = time.monotonic()
    celery_worker()
    celery_beat()
    assert wait_for(
        lambda: Transfer.objects.get(pk=release.pk).status == Transfer.Status.CONFIRMED,
        seconds=60,
    )
    took = time.monotonic() - started
    unfinished = returns.filter(status__in=Transfer.UNFINISHED).count()
    print(f"\npayout confirmed {took:.1f} s after the worker started, {unfinished} returns left")

    # then the payout went out while most of the returns still waited
    assert unfinished >= FLOOD // 2, unfinished
    # and the returns go out too, in their turn
    assert wait_for(
        lambda: not returns.filter(status__in=Transfer.UNFINISHED).exists(), seconds=120
    )
