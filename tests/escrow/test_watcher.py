import pytest

from escrow.deposits import deposits_watch
from escrow.models import ChainCursor, Deposit, Transfer
from escrow.selectors import escrow_address
from orders.models import OrderStatus
from tests.helpers.chain import funded_wallet, mine, rpc, send
from tests.helpers.money import due_base, order_for
from tests.helpers.networks import change_local_network

pytestmark = [
    pytest.mark.slow,  # money moving on the chain, settled block by block
    pytest.mark.money,
    pytest.mark.django_db,
    pytest.mark.usefixtures("chain"),
]


@pytest.fixture
def confirmations(settings):
    def require(blocks: int):
        change_local_network(settings, confirmations=blocks)

    return require


def test_the_watcher_credits_a_deposit_nobody_reported():
    wallet = funded_wallet()
    order = order_for(wallet, token="USDC")
    send(wallet, to=escrow_address(), symbol="USDC", amount_base=due_base(order))

    assert deposits_watch(network="local") == 1
    assert deposits_watch(network="local") == 0

    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE
    assert Deposit.objects.get().order == order


def test_the_watcher_returns_money_no_order_can_take():
    stranger = funded_wallet()
    send(stranger, to=escrow_address(), symbol="ETH", amount_base=10**17)

    deposits_watch(network="local")

    deposit = Deposit.objects.get()
    assert deposit.outcome == Deposit.Outcome.RETURNED and "no open order" in deposit.reason
    assert Transfer.objects.get(deposit=deposit).amount_base == 10**17


def test_the_watcher_scans_in_bounded_steps_and_remembers_where_it_stopped(settings):
    settings.KIBO_WATCHER_MAX_BLOCKS = 3
    deposits_watch(network="local")
    start = ChainCursor.objects.get(network="local").block_number
    mine(10)
    wallet = funded_wallet()
    order = order_for(wallet)
    send(wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(order))

    deposits_watch(network="local")

    head = int(rpc("eth_blockNumber"), 16)
    assert ChainCursor.objects.get(network="local").block_number == head > start + 3
    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE


def test_a_deposit_that_disappears_before_its_confirmations_is_not_credited(confirmations):
    confirmations(3)
    wallet = funded_wallet()
    order = order_for(wallet)
    deposits_watch(network="local")
    before_payment = rpc("evm_snapshot")
    send(wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(order))
    mine(1)  # two confirmations of three

    assert deposits_watch(network="local") == 0
    rpc("evm_revert", before_payment)  # the block with the payment is replaced
    mine(5)
    assert deposits_watch(network="local") == 0

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT and not Deposit.objects.exists()


def test_after_a_reorg_the_watcher_rewinds_and_finds_the_new_blocks():
    mine(3)
    fork_point = rpc("evm_snapshot")
    mine(4)
    deposits_watch(network="local")
    scanned_to = ChainCursor.objects.get(network="local")

    rpc("evm_revert", fork_point)  # another branch wins, with a payment in it
    wallet = funded_wallet()
    order = order_for(wallet)
    send(wallet, to=escrow_address(), symbol="USDT", amount_base=due_base(order))
    mine(3)
    assert (
        rpc("eth_getBlockByNumber", hex(scanned_to.block_number), False)["hash"]
        != scanned_to.block_hash
    )

    assert deposits_watch(network="local") == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE
