"""Every payout and refund exactly once: Kibo's records against the chain itself.

The cluster run (bench/cluster.py) kills a worker, the beat leader and a web server while
money moves. Afterwards this reads both sides. The records: one RELEASE or REFUND transfer
per order (the database's unique constraint says so; counted again here), every one
confirmed with the hash of the transaction that mined it, no order both paid and refunded,
no deposit left locked. The chain: every token transfer out of the escrow wallet, from the
first block to the last (`eth_getLogs`, the ERC-20 Transfer event from escrow). Each
confirmed transfer must be exactly one of those, to its recipient for its amount, and none
of those may be missing from the records: a payout signed twice and mined twice (two nonces
for one transfer) would be an event no record explains.
"""

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count
from eth_utils import to_checksum_address
from web3 import Web3

from escrow.chain import TRANSFER_TOPIC
from escrow.models import EscrowAccount, Transfer
from escrow.networks import network_spec
from escrow.selectors import escrow_address
from orders.models import Order, OrderStatus

NETWORK = "local"


@dataclass(frozen=True)
class Sent:
    """One token transfer out of escrow, as the chain has it."""

    tx_hash: str
    token: str
    recipient: str
    amount_base: int


@dataclass
class Ledger:
    # purpose -> status -> how many transfer records
    records: dict[str, Counter] = field(default_factory=dict)
    # purpose -> how many confirmed records the chain shows exactly once, as recorded
    once_on_chain: Counter = field(default_factory=Counter)
    sent_on_chain: int = 0  # token transfers out of escrow on chain, all of them
    problems: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return not self.problems


def sent_from_escrow(rpc_url: str, *, from_block: int = 0) -> list[Sent]:
    """Every ERC-20 transfer out of the escrow wallet on the local chain since `from_block`,
    whatever the token."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    spec = network_spec(NETWORK)
    sender = "0x" + escrow_address()[2:].lower().rjust(64, "0")
    every = {"fromBlock": from_block, "toBlock": "latest", "topics": [TRANSFER_TOPIC, sender]}
    logs = w3.eth.get_logs(every)
    sent = []
    for log in logs:
        token = spec.token_at(log["address"])
        sent.append(
            Sent(
                tx_hash="0x" + log["transactionHash"].hex().removeprefix("0x"),
                token=token.symbol if token else log["address"],
                recipient=to_checksum_address("0x" + log["topics"][2].hex()[-40:]),
                amount_base=int(log["data"].hex() or "0", 16),
            )
        )
    return sent


def _records(ledger: Ledger) -> None:
    """What the records must say once every order is over."""
    for row in Transfer.objects.values("purpose", "status").annotate(n=Count("id")):
        ledger.records.setdefault(row["purpose"], Counter())[row["status"]] = row["n"]
    twice = (
        Transfer.objects.filter(purpose__in=[Transfer.Purpose.RELEASE, Transfer.Purpose.REFUND])
        .values("order", "purpose")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    if twice.exists():
        ledger.problems.append(f"{twice.count()} order(s) with two transfers of one purpose")
    confirmed = Transfer.objects.filter(status=Transfer.Status.CONFIRMED)
    both = (
        confirmed.filter(purpose__in=[Transfer.Purpose.RELEASE, Transfer.Purpose.REFUND])
        .values("order")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    if both.exists():
        ledger.problems.append(f"{both.count()} order(s) both paid out and refunded")
    unfinished = Transfer.objects.exclude(
        status__in=[Transfer.Status.CONFIRMED, Transfer.Status.CANCELLED]
    )
    if unfinished.exists():
        ledger.problems.append(f"{unfinished.count()} transfer(s) not confirmed")
    unpaid = Order.objects.filter(status=OrderStatus.COMPLETED).exclude(
        transfers__purpose=Transfer.Purpose.RELEASE, transfers__status=Transfer.Status.CONFIRMED
    )
    if unpaid.exists():
        ledger.problems.append(f"{unpaid.count()} completed order(s) without a confirmed payout")
    locked = EscrowAccount.objects.filter(status=EscrowAccount.Status.LOCKED)
    if locked.exists():
        ledger.problems.append(f"{locked.count()} deposit(s) still locked in escrow")


def _against_chain(ledger: Ledger, sent: list[Sent]) -> None:
    """Each confirmed record is exactly one transfer on chain, and each transfer on chain a
    confirmed record."""
    ledger.sent_on_chain = len(sent)
    by_hash: dict[str, list[Sent]] = {}
    for each in sent:
        by_hash.setdefault(each.tx_hash, []).append(each)
    confirmed = list(Transfer.objects.filter(status=Transfer.Status.CONFIRMED))
    hashes = Counter(transfer.mined_tx_hash for transfer in confirmed)
    if reused := [tx for tx, n in hashes.items() if n > 1]:
        ledger.problems.append(f"{len(reused)} transaction(s) recorded for two transfers")
    for transfer in confirmed:
        on_chain = by_hash.get(transfer.mined_tx_hash or "", [])
        expected = Sent(
            tx_hash=transfer.mined_tx_hash or "",
            token=transfer.token,
            recipient=to_checksum_address(transfer.recipient),
            amount_base=int(transfer.amount_base),
        )
        if on_chain == [expected]:
            ledger.once_on_chain[transfer.purpose] += 1
        else:
            ledger.problems.append(
                f"{transfer.purpose} {transfer.pk}: on chain {len(on_chain)} time(s), "
                f"{'as recorded' if expected in on_chain else 'not as recorded'}"
            )
    if unexplained := set(by_hash) - set(hashes):
        ledger.problems.append(
            f"{len(unexplained)} transfer(s) out of escrow on chain that no record explains"
        )


def ledger_check(rpc_url: str, *, from_block: int = 0) -> Ledger:
    """The records against the chain since `from_block` (the cluster's chain is new: 0)."""
    ledger = Ledger()
    _records(ledger)
    _against_chain(ledger, sent_from_escrow(rpc_url, from_block=from_block))
    return ledger
