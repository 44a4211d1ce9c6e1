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


def format_amounts(*amounts: Decimal, decimals: int) -> list[str]:
    """Amounts of one token written alike, to as many places as tell them apart: at least two,
    at most the token's decimals ("12.995689" and "12.995690", never "12.99569")."""
    with localcontext() as ctx:
        ctx.prec = 100
        needed = (-min(0, int(amount.normalize().as_tuple().exponent)) for amount in amounts)
        places = min(max(2, *needed), decimals)
        quantum = Decimal(1).scaleb(-places)
        return [f"{amount.quantize(quantum):f}" for amount in amounts]


def format_base_units(*amounts_base: int, decimals: int, symbol: str) -> list[str]:
    """Base-unit amounts of one token as a person reads them: "12.995689 USDT"."""
    amounts = [from_base_units(amount, decimals) for amount in amounts_base]
    return [f"{text} {symbol}" for text in format_amounts(*amounts, decimals=decimals)]
