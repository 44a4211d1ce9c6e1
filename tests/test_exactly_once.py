"""The cluster run's verdict (bench/exactly_once.py) tells a payout made once from one made
twice or not at all: the records against the chain's own transfer events."""

import os

import pytest
from eth_account import Account

from bench.exactly_once import ledger_check
from escrow.models import Transfer
from tests.helpers.chain import rpc, send, set_token_balance
from tests.helpers.money import completed_order, settle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("chain")]


@pytest.fixture
def since() -> int:
    """The chain's next block: what earlier tests sent is not this test's."""
    return int(rpc("eth_blockNumber"), 16) + 1


def check(since: int):
    return ledger_check(os.environ["KIBO_RPC_URL_LOCAL"], from_block=since)


def test_a_payout_sent_once_is_exactly_once(since):
    # given a completed order whose payout went out on chain
    _, _, release = completed_order()
    settle(release)
    # when the records are read against the chain
    ledger = check(since)
    # then the payout is there once, as recorded, and nothing else left escrow
    assert ledger.exactly_once, ledger.problems
    assert ledger.once_on_chain[Transfer.Purpose.RELEASE] == 1
    assert ledger.sent_on_chain == 1


def test_a_payout_sent_twice_is_caught(since):
    # given a payout that went out, and the escrow wallet sending the same amount again (as
    # a second signature of the same transfer would)
    _, ally, release = completed_order()
    paid = settle(release)
    escrow = Account.from_key(os.environ["KIBO_ESCROW_PRIVATE_KEY"])
    set_token_balance("USDT", escrow.address, 10 * int(paid.amount_base))
    send(escrow, to=ally.wallet_address, symbol="USDT", amount_base=int(paid.amount_base))
    # when the records are read against the chain, then the second payment is found
    ledger = check(since)
    assert not ledger.exactly_once
    assert ledger.sent_on_chain == 2
    assert "1 transfer(s) out of escrow on chain that no record explains" in ledger.problems


def test_a_payout_never_sent_is_caught(since):
    # given a completed order whose payout was never sent
    completed_order()
    # when the records are read against the chain, then the missing payout is found
    ledger = check(since)
    assert not ledger.exactly_once
    assert "1 transfer(s) not confirmed" in ledger.problems
    assert "1 completed order(s) without a confirmed payout" in ledger.problems
