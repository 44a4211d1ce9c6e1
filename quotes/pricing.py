"""The one place where an order's crypto amounts are computed. Decimal only."""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

# Amounts are stored as NUMERIC(18,8): a token with more decimals is priced to 8.
MAX_DECIMALS = 8
TOKEN_DECIMALS = {"USDT": 6, "USDC": 6, "ETH": 18}
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Price:
    amount_crypto: Decimal  # what the user must pay into escrow
    fee_crypto: Decimal  # what Kibo keeps
    payout_crypto: Decimal  # what the ally receives


def token_quantum(token: str) -> Decimal:
    return Decimal(1).scaleb(-min(TOKEN_DECIMALS[token], MAX_DECIMALS))


def price_order(
    *,
    amount_fiat: Decimal,
    rate: Decimal,
    token: str,
    spread_percent: Decimal,
    fee_percent: Decimal,
) -> Price:
    """due = fiat / rate * (1 + spread), rounded up; payout = due * (1 - fee), rounded down."""
    quantum = token_quantum(token)
    with localcontext() as ctx:
        ctx.prec = 60
        due = (amount_fiat / rate * (1 + spread_percent / HUNDRED)).quantize(
            quantum, rounding=ROUND_CEILING
        )
        payout = (due * (1 - fee_percent / HUNDRED)).quantize(quantum, rounding=ROUND_FLOOR)
    return Price(amount_crypto=due, fee_crypto=due - payout, payout_crypto=payout)
