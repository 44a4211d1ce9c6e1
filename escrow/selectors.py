import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, F, Max, Min, Q, Sum
from eth_utils import is_address, to_checksum_address

from escrow import chain
from escrow.amounts import to_base_units
from escrow.models import Deposit, EscrowAccount, SignedTransaction, Transfer
from escrow.networks import NetworkSpec, TokenSpec, configured_networks, network_spec


def escrow_address() -> str:
    """The escrow wallet payers send to: KIBO_ESCROW_ADDRESS, from the environment, the same
    in every process (no web page can change it; the worker checks its signer's matches)."""
    return _checksummed(settings.KIBO_ESCROW_ADDRESS)


@functools.lru_cache(maxsize=8)
def _checksummed(address: str) -> str:
    if not is_address(address):
        raise ImproperlyConfigured("KIBO_ESCROW_ADDRESS is not an Ethereum address.")
    return to_checksum_address(address)


@dataclass(frozen=True)
class PaymentRequest:
    """What a wallet must send to pay an order: one transaction, fully specified."""

    network: NetworkSpec
    token: TokenSpec
    to: str  # the escrow address (the recipient, even when the transaction goes to a token)
    amount_base: int
    transaction: dict  # to, value, data, as the wallet sends it

    @property
    def eip681(self) -> str:
        """A payment link phone wallets read from a QR (EIP-681)."""
        chain_id = self.network.chain_id
        if self.token.is_native:
            return f"ethereum:{self.to}@{chain_id}?value={self.amount_base}"
        return (
            f"ethereum:{self.token.address}@{chain_id}/transfer"
            f"?address={self.to}&uint256={self.amount_base}"
        )


def payment_request(order) -> PaymentRequest:
    """The exact payment that credits `order`: its amount due, rounded up to base units."""
    spec = network_spec(order.network)
    token = spec.token(order.crypto_token)
    to = escrow_address()
    amount = to_base_units(order.amount_crypto, token.decimals, round_up=True)
    return PaymentRequest(
        network=spec,
        token=token,
        to=to,
        amount_base=amount,
        transaction=chain.transfer_call(spec, token, to, amount),
    )


@dataclass(frozen=True)
class Funds:
    """One coin in a sending wallet at one block: what it holds, and how much of that the
    transfers already signed will still take."""

    symbol: str
    held: int
    promised: int

    @property
    def free(self) -> int:
        return self.held - self.promised


def escrow_funds(
    *, network: str, address: str, coins: Iterable[TokenSpec], excluding=None
) -> dict[str, Funds]:
    """The spending rule: what a new transfer from `address` may spend, per coin (by symbol).

    It is the balance less what signed transfers will still take from it: those whose nonce
    the chain has not used yet. A mined transaction (confirmed or not, or one attempt of a
    replaced transfer) has already left the balance, so it is not counted again. Each such
    transfer will take its amount of its token and, from the gas coin, at most its gas limit
    at the highest fee any of its attempts offered. The balance and the nonce are read at the
    same block, so a transaction mined between the two reads is counted exactly once.
    `excluding` leaves out the transfer being signed.
    """
    gas_coin = network_spec(network).gas_coin
    block = chain.head_block(network)
    next_nonce = chain.nonce_of(network, address, block=block)
    unmined = (
        Transfer.objects.filter(network=network, from_address=address, nonce__gte=next_nonce)
        .exclude(pk=excluding)
        .annotate(top_fee=Max("signed__max_fee_per_gas", filter=Q(signed__nonce=F("nonce"))))
        .values_list("token", "amount_base", "gas", "top_fee")
    )
    promised: dict[str, int] = defaultdict(int)
    for token, amount, gas, top_fee in unmined:
        promised[token] += int(amount)
        promised[gas_coin.symbol] += int(gas or 0) * int(top_fee or 0)
    return {
        coin.symbol: Funds(
            symbol=coin.symbol,
            held=chain.balance_of(network, coin, address, block=block),
            promised=promised[coin.symbol],
        )
        for coin in coins
    }


@dataclass(frozen=True)
class Reconciliation:
    network: str
    token: str
    decimals: int
    block: int  # the confirmed block every figure was read at
    on_chain: int  # base units the escrow wallet holds
    expected: int  # what Kibo's records say it should hold
    locked: int  # deposits of orders not yet paid out or refunded
    exact: bool  # False for the gas coin, which also pays gas and holds operator funds

    @property
    def difference(self) -> int:
        return self.on_chain - self.expected

    @property
    def ok(self) -> bool:
        return self.difference == 0 if self.exact else self.difference >= 0

    @property
    def surplus(self) -> int:
        """Gas coin on chain that no record explains: it arrived without a transfer the
        deposit watcher can see (a contract's internal call, e.g. from a smart-contract
        wallet) or before Kibo kept records. Worth a look, never a failure."""
        return max(0, self.difference) if not self.exact else 0


def _sum(queryset, field: str) -> int:
    return int(queryset.aggregate(total=Sum(field))["total"] or 0)


def _mined_unsettled(network: str, *, block: int) -> tuple[dict[str, int], int]:
    """Per token, the amounts of transfers mined by `block` but not yet marked confirmed; and
    the gas they paid. Only attempts at a transfer's current nonce can be mined unsettled:
    an earlier nonce's attempt that mined was settled, or recorded as reverted."""
    amounts: dict[str, int] = defaultdict(int)
    gas = 0
    unsettled = Transfer.objects.filter(network=network, status=Transfer.Status.SIGNED)
    for transfer in unsettled.prefetch_related("signed"):
        for attempt in transfer.signed.all():
            if attempt.nonce != transfer.nonce:
                continue
            mined = chain.receipt(network, attempt.tx_hash)
            if mined is not None and mined.block_number <= block:
                amounts[transfer.token] += int(transfer.amount_base) if mined.status == 1 else 0
                gas += mined.fee_paid
                break
    return amounts, gas


def reconcile(*, networks: Iterable[NetworkSpec] | None = None) -> list[Reconciliation]:
    """Escrow's on-chain balance per network (every configured one unless `networks`) and
    token against the ledger of records: every deposit in, minus every transfer out (and, for
    the gas coin, the gas paid).

    Everything is read at each network's final block (escrow.chain.final_block, where
    deposits and transfers are recorded), so neither a payment arriving
    nor a transfer mined while this runs can make the books look wrong.
    """
    wallet = escrow_address()
    lines = []
    for spec in configured_networks() if networks is None else networks:
        block = chain.final_block(spec.name)
        tokens = {t.symbol: t for t in spec.tokens.values()}
        tokens.setdefault(spec.gas_coin.symbol, spec.gas_coin)
        pending, pending_gas = _mined_unsettled(spec.name, block=block)
        for token in tokens.values():
            deposits = Deposit.objects.filter(network=spec.name, token=token.symbol)
            sent = Transfer.objects.filter(
                network=spec.name, token=token.symbol, status=Transfer.Status.CONFIRMED
            )
            expected = (
                _sum(deposits, "amount_base") - _sum(sent, "amount_base") - pending[token.symbol]
            )
            is_gas_coin = token.is_native and token.symbol == spec.gas_coin.symbol
            if is_gas_coin:
                spent = Transfer.objects.filter(network=spec.name, fee_paid_base__isnull=False)
                expected -= _sum(spent, "fee_paid_base") + pending_gas
            locked = EscrowAccount.objects.filter(
                network=spec.name, token=token.symbol, status=EscrowAccount.Status.LOCKED
            )
            lines.append(
                Reconciliation(
                    network=spec.name,
                    token=token.symbol,
                    decimals=token.decimals,
                    block=block,
                    on_chain=chain.balance_of(spec.name, token, wallet, block=block),
                    expected=expected,
                    locked=sum(to_base_units(e.amount, token.decimals) for e in locked),
                    exact=not is_gas_coin,
                )
            )
    return lines


def kept_deposits() -> list[dict]:
    """Deposits kept as dust (below RETURN_MIN_<TOKEN>) that staff have not returned, per
    network and token: how many and how much (base units). The kept ones are few and
    indexed (idx_deposits_kept)."""
    returned = Transfer.objects.filter(purpose=Transfer.Purpose.RETURN).values("deposit_id")
    return list(
        Deposit.objects.filter(kept_base__gt=0)
        .exclude(pk__in=returned)
        .values("network", "token")
        .annotate(count=Count("pk"), total=Sum("kept_base"))
        .order_by("network", "token")
    )


# --- the operator's figures (kibo.metrics, on every Prometheus scrape) ----------------


@dataclass
class TransferFigures:
    """Transfers out of escrow that are not done, for Prometheus. Each query reads one
    partial index (HELD/FROZEN, unfinished, FAILED) or a week of `idx_transfers_created`."""

    waiting_on: dict[tuple[str, str, str], int]  # (purpose, status, network) -> transfers
    oldest_sent_at: dict[str, datetime]  # network -> the first signing of the oldest SIGNED
    short_of: dict[tuple[str, str], int]  # (network, coin) -> transfers WAITING for that coin
    gas_spent_last_week: dict[str, int]  # network -> base units of its gas coin


def transfer_figures(*, now: datetime) -> TransferFigures:
    S = Transfer.Status
    waiting_on: dict[tuple[str, str, str], int] = {}
    for statuses in ((S.HELD, S.FROZEN), Transfer.UNFINISHED, (S.FAILED,)):
        rows = (
            Transfer.objects.filter(status__in=statuses)
            .values_list("purpose", "status", "network")
            .annotate(n=Count("pk"))
            .order_by()
        )
        waiting_on.update({(purpose, status, network): n for purpose, status, network, n in rows})
    # The few SIGNED transfers first (idx_transfers_unfinished), then their first signing
    # by transfer (the signed transactions' transfer index): one join would scan them all.
    sent = dict(Transfer.objects.filter(status=S.SIGNED).values_list("pk", "network"))
    first_signed: dict[str, datetime] = {}
    signings = (
        SignedTransaction.objects.filter(transfer_id__in=list(sent))
        .values_list("transfer_id")
        .annotate(first=Min("created_at"))
        .order_by()
    )
    for transfer_id, first in signings:
        network = sent[transfer_id]
        first_signed[network] = min(first, first_signed.get(network, first))
    short = Transfer.objects.filter(status=S.WAITING)
    spent = Transfer.objects.filter(
        created_at__gte=now - timedelta(days=7), fee_paid_base__isnull=False
    )
    return TransferFigures(
        waiting_on=waiting_on,
        oldest_sent_at=first_signed,
        short_of={
            (network, coin): n
            for network, coin, n in short.values_list("network", "shortfall_coin")
            .annotate(n=Count("pk"))
            .order_by()
        },
        gas_spent_last_week={
            network: int(total)
            for network, total in spent.values_list("network")
            .annotate(total=Sum("fee_paid_base"))
            .order_by()
        },
    )
