"""Between Decimal token amounts (what people read) and integer base units (what chains move)."""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext


def to_base_units(amount: Decimal, decimals: int, *, round_up: bool = False) -> int:
    """`amount` in the token's smallest unit; a fraction of a unit is rounded down (payouts)
    or, with round_up, up (what a user owes)."""
    with localcontext() as ctx:
        ctx.prec = 100
        scaled = amount.scaleb(decimals)
        return int(scaled.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_FLOOR))


def from_base_units(amount_base: int | Decimal, decimals: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 100
        return Decimal(int(amount_base)).scaleb(-decimals)
