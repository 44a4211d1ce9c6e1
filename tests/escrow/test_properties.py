"""Random lifecycles on the real chain: whatever happens, nothing is paid twice or lost."""

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from escrow.amounts import to_base_units
from escrow.chain import IncomingTransfer, balance_of, head_block, receipt
from escrow.deposits import deposit_record
from escrow.models import Transfer
from escrow.selectors import escrow_address, reconcile
from escrow.transfers import _transfer_sign, transfers_process_unfinished, transfers_unhold_due
from kibo.errors import DomainError
from orders.disputes import dispute_decide, dispute_open
from orders.models import OPEN_STATUSES, Order, OrderStatus
from orders.services import (
    order_complete,
    order_confirm_paid,
    order_create,
    order_expire,
    order_take,
)
from tests.factories import QR, expire_timer, make_ally, make_quote, make_user, png_upload
from tests.helpers.chain import balance, confirmed, funded_wallet, rpc, send, token
from tests.helpers.db import rollback_scope
from tests.helpers.processes import wait_for

pytestmark = pytest.mark.slow  # many random lifecycles on the chain

TOKENS = ("USDT", "USDC", "ETH")
# "advance" moves the oldest open order one step: pay it, take it, or complete it. "judge"
# ends the hold of a completed order's payout: its payer confirms, the hold runs out, or the
# payer disputes it and staff uphold or reject the dispute.
ACTIONS = (
    "create",
    "advance",
    "advance",
    "overpay",
    "underpay",
    "expire",
    "crash",
    "settle",
    "judge",
)


class Rollback(Exception):
    pass


class World:
    """Three users paying three tokens, two allies, all on fresh wallets."""

    def __init__(self):
        for symbol in TOKENS:
            make_quote(token=symbol)
        self.wallets = [funded_wallet() for _ in TOKENS]
        self.users = [make_user(address=w.address) for w in self.wallets]
        self.allies = [make_ally() for _ in range(2)]
        self.staff = make_user(is_staff=True)
        self.ally_start = {
            (a.wallet_address, s): balance(s, a.wallet_address) for a in self.allies for s in TOKENS
        }

    def open_order(self, i: int) -> Order | None:
        return Order.objects.filter(user=self.users[i], status__in=OPEN_STATUSES).first()

    def step(self, action: str, i: int) -> None:
        order = self.open_order(i % 3)
        if action == "create" and order is None:
            order_create(
                user=self.users[i % 3],
                qr_data=QR,
                amount_fiat="50.00",
                fiat_currency="BOB",
                crypto_token=TOKENS[i % 3],
                network="local",
            )
        elif action in ("overpay", "underpay") and order is not None:
            self.pay(order, {"overpay": 7, "underpay": -1}[action])
        elif action == "advance":
            self.advance(i)
        elif action == "expire" and order is not None:
            expire_timer(order)
            order_expire(order_id=order.pk)
        elif action == "crash":  # a worker that stored a signed transfer and died
            for pending in Transfer.objects.filter(status=Transfer.Status.PENDING):
                _transfer_sign(transfer_id=pending.pk)
                break
        elif action == "settle":
            transfers_process_unfinished()
        elif action == "judge":
            self.judge(i)

    def judge(self, i: int) -> None:
        held = Transfer.objects.filter(status=Transfer.Status.HELD).select_related("order__user")
        release = held.order_by("created_at").first()
        if release is None:
            return
        order = release.order
        if i % 4 == 0:
            order_confirm_paid(order_id=order.pk, user=order.user)
        elif i % 4 == 1:
            Transfer.objects.filter(pk=release.pk).update(held_until=timezone.now())
            transfers_unhold_due()
        else:
            dispute = dispute_open(order_id=order.pk, user=order.user, statement="Not paid.")
            dispute_decide(
                dispute_id=dispute.pk, staff=self.staff, uphold=i % 4 == 2, note="Decided."
            )

    def advance(self, i: int) -> None:
        movable = Order.objects.filter(status__in=OPEN_STATUSES).order_by("-status", "created_at")
        order = movable.first()
        if order is None:
            return
        if order.status == OrderStatus.PENDING_PAYMENT:
            self.pay(order, 0)
        elif order.status == OrderStatus.AVAILABLE:
            order_take(order_id=order.pk, ally=self.allies[i % 2])
        else:
            order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())

    def pay(self, order: Order, delta: int) -> None:
        wallet = self.wallets[self.users.index(order.user)]
        decimals = 18 if order.crypto_token == "ETH" else 6
        amount = to_base_units(order.amount_crypto, decimals, round_up=True) + delta
        tx = send(wallet, to=escrow_address(), symbol=order.crypto_token, amount_base=amount)
        confirmed(tx)  # deposits are recorded once confirmed, as the watcher does
        mined = receipt("local", tx)
        token_address = (
            None if order.crypto_token == "ETH" else next(log["address"] for log in mined.logs)
        )
        deposit_record(
            incoming=IncomingTransfer(
                network="local",
                tx_hash=tx,
                log_index=-1 if token_address is None else 0,
                block_number=mined.block_number,
                block_hash=mined.block_hash,
                token_address=token_address,
                sender=wallet.address,
                recipient=escrow_address(),
                amount_base=amount,
            )
        )

    def check(self) -> None:
        # no double payout: one release or one refund per order, never both (a release
        # cancelled before it was signed, for an upheld dispute, pays nothing)
        for order in Order.objects.all():
            purposes = list(
                order.transfers.exclude(status=Transfer.Status.CANCELLED).values_list(
                    "purpose", flat=True
                )
            )
            assert sorted(set(purposes)) == sorted(purposes), purposes
            assert not {"RELEASE", "REFUND"} <= set(purposes)
            cancelled = order.transfers.filter(status=Transfer.Status.CANCELLED)
            assert not cancelled.filter(signed__isnull=False).exists()
        # each ally got exactly the payouts of the releases mined to them, as of one block
        block = head_block("local")
        for ally in self.allies:
            for symbol in TOKENS:
                releases = Transfer.objects.filter(
                    purpose=Transfer.Purpose.RELEASE,
                    recipient=ally.wallet_address,
                    token=symbol,
                    status__in=[Transfer.Status.SIGNED, Transfer.Status.CONFIRMED],
                )
                paid = sum(int(t.amount_base) for t in releases if mined_by(t, block))
                gained = (
                    balance_of("local", token(symbol), ally.wallet_address, block=block)
                    - self.ally_start[(ally.wallet_address, symbol)]
                )
                assert gained == paid, (symbol, gained, paid)
        # no false shortfall: every obligation is covered by a confirmed deposit, so nothing
        # may wait for funds
        waiting = Transfer.objects.filter(status=Transfer.Status.WAITING)
        assert not waiting.exists(), list(waiting.values_list("purpose", "last_error"))
        # no lost funds: the escrow holds what the records say
        assert all(line.ok for line in reconcile()), reconcile()


def mined_by(transfer: Transfer, block: int) -> bool:
    """Whether one of the transfer's attempts at its nonce succeeded in `block` or before."""
    for attempt in transfer.signed.filter(nonce=transfer.nonce):
        mined = receipt("local", attempt.tx_hash)
        if mined is not None and mined.status == 1 and mined.block_number <= block:
            return True
    return False


def all_settled() -> bool:
    """Time passes: every hold ends, and every transfer goes out."""
    Transfer.objects.filter(status=Transfer.Status.HELD).update(held_until=timezone.now())
    transfers_process_unfinished()
    final = (Transfer.Status.CONFIRMED, Transfer.Status.CANCELLED)
    return not Transfer.objects.exclude(status__in=final).exists()


def run_lifecycle(steps) -> None:
    snapshot = rpc("evm_snapshot")
    try:
        with rollback_scope():
            world = World()
            for action, i in steps:
                try:
                    with rollback_scope():
                        world.step(action, i)
                except DomainError:
                    pass  # an illegal move is refused and changes nothing
                world.check()
            assert wait_for(all_settled, seconds=30), list(
                Transfer.objects.values_list("purpose", "status", "last_error")
            )
            world.check()
            raise Rollback
    except Rollback:
        pass
    finally:
        rpc("evm_revert", snapshot)


STEPS = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 5)), min_size=1, max_size=14)
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.mark.django_db
@settings(max_examples=15, deadline=None, suppress_health_check=HEALTH)
@given(steps=STEPS)
@example(steps=[("create", 0), ("advance", 0), ("advance", 0), ("advance", 0), ("settle", 0)])
@example(steps=[("create", 2), ("advance", 0), ("expire", 2), ("crash", 0), ("settle", 0)])
@example(steps=[("create", 0), *[("advance", 0)] * 3, ("judge", 2), ("crash", 0), ("settle", 0)])
@example(steps=[("create", 1), *[("advance", 1)] * 3, ("judge", 3), ("settle", 0)])
@example(
    steps=[
        ("create", 1),
        ("overpay", 1),
        ("advance", 1),
        ("crash", 0),
        ("advance", 0),
        ("expire", 1),
        ("settle", 0),
    ]
)
def test_random_lifecycles_never_pay_twice_and_never_lose_money(steps):
    run_lifecycle(steps)


@pytest.mark.django_db
@pytest.mark.parametrize("pace", ["mainnet"], indirect=True)
@settings(max_examples=5, deadline=None, suppress_health_check=HEALTH)
@given(steps=STEPS)
@example(steps=[("create", 0), ("advance", 0), ("advance", 0), ("advance", 0), ("settle", 0)])
@example(
    steps=[
        ("create", 0),
        ("create", 1),
        ("advance", 0),
        ("advance", 0),
        ("advance", 0),
        ("advance", 0),
        ("settle", 0),
        ("advance", 0),
        ("expire", 1),
        ("settle", 0),
    ]
)
def test_random_lifecycles_at_mainnet_pace_never_pay_twice_and_never_lose_money(pace, steps):
    """The same, while transfers overlap: payouts mined and waiting for confirmations."""
    run_lifecycle(steps)
