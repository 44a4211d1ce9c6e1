from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Sum
from eth_utils import to_checksum_address

from escrow import chain
from escrow.amounts import to_base_units
from escrow.models import Deposit, EscrowAccount, Transfer
from escrow.networks import configured_networks
from kibo.selectors import get_config


def escrow_address() -> str:
    """The escrow wallet, as staff configured it (the worker checks its key matches)."""
    return to_checksum_address(get_config("ESCROW_WALLET_ADDRESS"))


@dataclass(frozen=True)
class Reconciliation:
    network: str
    token: str
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


def _sum(queryset, field: str) -> int:
    return int(queryset.aggregate(total=Sum(field))["total"] or 0)


def _mined_unsettled(network: str) -> tuple[dict[str, int], int]:
    """Per token, the amounts of transfers already mined but not yet marked confirmed; and
    the gas they paid."""
    amounts: dict[str, int] = defaultdict(int)
    gas = 0
    unsettled = Transfer.objects.filter(network=network, status=Transfer.Status.SIGNED)
    for transfer in unsettled.prefetch_related("signed"):
        for attempt in transfer.signed.all():
            mined = chain.receipt(network, attempt.tx_hash)
            if mined is not None:
                amounts[transfer.token] += int(transfer.amount_base) if mined.status == 1 else 0
                gas += mined.fee_paid
                break
    return amounts, gas


def reconcile() -> list[Reconciliation]:
    """Escrow's on-chain balance per network and token against the ledger of records:
    every deposit in, minus every transfer out (and, for the gas coin, the gas paid)."""
    wallet = escrow_address()
    lines = []
    for spec in configured_networks():
        tokens = {t.symbol: t for t in spec.tokens.values()}
        tokens.setdefault(spec.gas_coin.symbol, spec.gas_coin)
        pending, pending_gas = _mined_unsettled(spec.name)
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
                    on_chain=chain.balance_of(spec.name, token, wallet),
                    expected=expected,
                    locked=sum(to_base_units(e.amount, token.decimals) for e in locked),
                    exact=not is_gas_coin,
                )
            )
    return lines
