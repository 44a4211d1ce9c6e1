"""SYSTEM_CONFIG: the knobs staff turn while Kibo runs, each declared once, here, with its
type, default, bounds and description (the way Sentry registers its options).

Code reads a knob through its declaration, typed: `ALLY_PENALTY_MINUTES.get()` is an int,
`TAKEN_TIMEOUT.get()` a timedelta. A knob that is not declared cannot be read: it is an
AttributeError in code, and `option_named` raises UnknownConfigKey (a 500 and a log line,
never a message shown to a payer). Staff change values in the admin, through
kibo.services.config_set, which refuses a value of the wrong type or out of bounds; every
process sees a change once it commits (`config_values` below reads the table through the
cache). A key without a row in the table has its default; `migrate` refuses to run while a
stored value is one its option does not take (kibo.checks). Every change is audited.

What identifies the deployment (the escrow address, networks, token contracts, keys) is not
here: it comes from the environment (settings), so no web page can change it.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from django.core.cache import cache
from eth_utils import is_address, to_checksum_address

from kibo.cache import current_generation
from kibo.errors import DomainError
from kibo.models import SystemConfig

T = TypeVar("T")


class UnknownConfigKey(LookupError):
    """A programming error: no option of that name is declared."""


class InvalidConfigValue(DomainError):
    """A value staff typed that the option does not take; nothing was saved."""


class ConfigCorrupt(RuntimeError):
    """A stored value the option cannot read (written behind the services' back)."""


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("a number") from None
    if not value.is_finite():
        raise ValueError("a number")
    return value


def _integer(text: str) -> int:
    if not re.fullmatch(r"\s*-?\d+\s*", text):
        raise ValueError("a whole number")
    return int(text)


def _address(text: str) -> str:
    if not is_address(text.strip()):
        raise ValueError("an Ethereum address (0x and 40 hex digits)")
    return to_checksum_address(text.strip())


def _addresses(text: str) -> tuple[str, ...]:
    return tuple(_address(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Option(Generic[T]):
    """One SYSTEM_CONFIG key: how its text reads (`parse`, which raises ValueError with what
    it expects), its default, and the bounds a value must keep (compared after parsing)."""

    key: str
    parse: Callable[[str], T]
    default: str
    description: str
    low: Decimal | float | None = None
    high: Decimal | float | None = None
    unit: str = ""

    def read(self, text: str) -> T:
        """The value of this text; InvalidConfigValue, saying why, for one it does not take."""
        try:
            value = self.parse(text)
        except ValueError as expected:
            raise InvalidConfigValue(f"{self.key} takes {expected}.") from None
        measure = self._measure(value)
        if self.low is not None and measure < self.low:
            raise InvalidConfigValue(f"{self.key} is at least {self.low}{self.unit}.")
        if self.high is not None and measure > self.high:
            raise InvalidConfigValue(f"{self.key} is at most {self.high}{self.unit}.")
        return value

    def _measure(self, value: T) -> Any:
        """What the bounds compare: a duration in minutes, any other value itself."""
        return value / timedelta(minutes=1) if isinstance(value, timedelta) else value

    def get(self) -> T:
        """The current value (the default while the table has no row for it)."""
        text = config_values().get(self.key, self.default)
        try:
            return self.read(text)
        except InvalidConfigValue as problem:
            raise ConfigCorrupt(f"SYSTEM_CONFIG {self.key}={text!r}: {problem.message}") from None


def _minutes(text: str) -> timedelta:
    """Minutes, fractions allowed ("0.5" is thirty seconds)."""
    return timedelta(seconds=float(_decimal(text) * 60))


def _names(*allowed: str) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        if not names or any(name not in allowed for name in names):
            raise ValueError(f"a comma-separated list of {', '.join(allowed)}")
        return names

    return parse


OPTIONS: dict[str, Option[Any]] = {}


def _declare(option: Option[T]) -> Option[T]:
    assert option.key not in OPTIONS, option.key
    option.read(option.default)  # a default must be a value the option takes
    OPTIONS[option.key] = option
    return option


def option_named(key: str) -> Option[Any]:
    try:
        return OPTIONS[key]
    except KeyError:
        raise UnknownConfigKey(f"SYSTEM_CONFIG has no option {key!r}.") from None


MINUTES, SECONDS, HOURS, PERCENT = " (minutes)", " (seconds)", " (hours)", " %"

# --- an order's timers and the allies' penalties --------------------------------------------

PENDING_PAYMENT_TIMEOUT = _declare(
    Option(
        "PENDING_PAYMENT_TIMEOUT_MINUTES",
        _minutes,
        "3",
        "Minutes a new order waits for the user's deposit.",
        low=0.05,
        high=60,
        unit=MINUTES,
    )
)
AVAILABLE_TIMEOUT = _declare(
    Option(
        "AVAILABLE_TIMEOUT_MINUTES",
        _minutes,
        "5",
        "Minutes a paid order waits on the board for an ally.",
        low=0.05,
        high=60,
        unit=MINUTES,
    )
)
TAKEN_TIMEOUT = _declare(
    Option(
        "TAKEN_TIMEOUT_MINUTES",
        _minutes,
        "5",
        "Minutes the ally who took an order has to upload the receipt.",
        low=0.05,
        high=60,
        unit=MINUTES,
    )
)
ALLY_PENALTY_MINUTES = _declare(
    Option(
        "ALLY_PENALTY_MINUTES",
        _integer,
        "30",
        "Minutes an ally who let a taken order expire cannot take orders.",
        low=1,
        high=7 * 24 * 60,
        unit=MINUTES,
    )
)
RELEASE_HOLD = _declare(
    Option(
        "RELEASE_HOLD_MINUTES",
        _minutes,
        "10",
        "Minutes a completed order's payout is held while the payer may still say the shop "
        "was not paid (0: it goes out at once).",
        low=0,
        high=24 * 60,
        unit=MINUTES,
    )
)
RELEASE_HOLD_NEW_ALLY = _declare(
    Option(
        "RELEASE_HOLD_MINUTES_NEW_ALLY",
        _minutes,
        "120",
        "Minutes the payout is held instead for an ally's first NEW_ALLY_ORDERS completed "
        "orders: a fresh account's receipts have no record behind them yet.",
        low=0,
        high=7 * 24 * 60,
        unit=MINUTES,
    )
)
NEW_ALLY_ORDERS = _declare(
    Option(
        "NEW_ALLY_ORDERS",
        _integer,
        "5",
        "Completed orders an ally's payouts are held RELEASE_HOLD_MINUTES_NEW_ALLY for.",
        low=0,
        high=1000,
    )
)

# --- disputes -------------------------------------------------------------------------------

FAKE_PROOF_PENALTY_MINUTES = _declare(
    Option(
        "FAKE_PROOF_PENALTY_MINUTES",
        _integer,
        "1440",
        "Minutes an ally cannot take orders after staff find a receipt false.",
        low=1,
        high=365 * 24 * 60,
        unit=MINUTES,
    )
)
FAKE_PROOF_REPUTATION_LOSS = _declare(
    Option(
        "FAKE_PROOF_REPUTATION_LOSS",
        _decimal,
        "1.00",
        "Reputation (0 to 5) an ally loses when staff find a receipt false.",
        low=0,
        high=5,
    )
)
DISPUTE_SLA_HOURS = _declare(
    Option(
        "DISPUTE_SLA_HOURS",
        _integer,
        "24",
        "Hours within which staff decide a dispute; an older open one shows as overdue.",
        low=1,
        high=30 * 24,
        unit=HOURS,
    )
)

# --- prices ---------------------------------------------------------------------------------

QUOTE_UPDATE_INTERVAL_SECONDS = _declare(
    Option(
        "QUOTE_UPDATE_INTERVAL_SECONDS",
        _integer,
        "30",
        "How often market rates are refreshed.",
        low=1,
        high=3600,
        unit=SECONDS,
    )
)
QUOTE_MAX_AGE_SECONDS = _declare(
    Option(
        "QUOTE_MAX_AGE_SECONDS",
        _integer,
        "120",
        "An order cannot be priced with a quote older than this.",
        low=5,
        high=3600,
        unit=SECONDS,
    )
)
QUOTE_SOURCES = _declare(
    Option(
        "QUOTE_SOURCES",
        _names("binance_p2p", "coingecko", "local"),  # quotes.providers
        "binance_p2p,coingecko,local",
        "Rate sources in the order they are tried: binance_p2p, coingecko, local.",
    )
)
QUOTE_MAX_JUMP_PERCENT = _declare(
    Option(
        "QUOTE_MAX_JUMP_PERCENT",
        _decimal,
        "10",
        "A new rate further than this from the last one is refused and logged.",
        low=Decimal("0.1"),
        high=100,
        unit=PERCENT,
    )
)
QUOTE_CROSS_CHECK_PERCENT = _declare(
    Option(
        "QUOTE_CROSS_CHECK_PERCENT",
        _decimal,
        "10",
        "A rate further than this from what the next source in QUOTE_SOURCES says is refused "
        "and logged (0: no second opinion is asked).",
        low=0,
        high=100,
        unit=PERCENT,
    )
)
QUOTE_SPREAD_PERCENT = _declare(
    Option(
        "QUOTE_SPREAD_PERCENT",
        _decimal,
        "0.5",
        "Added to the market rate when pricing an order.",
        low=0,
        high=20,
        unit=PERCENT,
    )
)
PLATFORM_FEE_PERCENT = _declare(
    Option(
        "PLATFORM_FEE_PERCENT",
        _decimal,
        "1.0",
        "Kept from each deposit; the ally receives the rest.",
        low=0,
        high=20,
        unit=PERCENT,
    )
)


def _order_limits(
    fiat: str, currency: str, smallest: str, largest: str
) -> tuple[Option[Decimal], Option[Decimal]]:
    def limit(key: str, default: str, description: str) -> Option[Decimal]:
        return _declare(
            Option(
                key,
                _decimal,
                default,
                description,
                low=Decimal("0.01"),
                high=Decimal("99999999.99"),  # what an order's amount column holds
            )
        )

    return (
        limit(f"MIN_ORDER_AMOUNT_{fiat}", smallest, f"Smallest order in {currency}."),
        limit(f"MAX_ORDER_AMOUNT_{fiat}", largest, f"Largest order in {currency}."),
    )


# The smallest and largest order per fiat currency.
ORDER_LIMITS: dict[str, tuple[Option[Decimal], Option[Decimal]]] = {
    "BOB": _order_limits("BOB", "bolivianos", "10", "10000"),
    "MXN": _order_limits("MXN", "Mexican pesos", "25", "25000"),
    "ARS": _order_limits("ARS", "Argentine pesos", "1500", "1500000"),
}

# --- escrow ---------------------------------------------------------------------------------

ESCROW_TREASURY_ADDRESSES = _declare(
    Option(
        "ESCROW_TREASURY_ADDRESSES",
        _addresses,
        "",
        "Comma-separated wallets whose transfers into escrow are operator funding (e.g. gas), "
        "kept instead of returned.",
    )
)
# Below these, a transfer into escrow that pays no order is not returned automatically:
# each return costs escrow gas, so a contract making a thousand 1-unit deposits would make
# a thousand returns. The deposit is kept on record for staff, who may return it by hand.
RETURN_MIN = {
    token: _declare(
        Option(
            f"RETURN_MIN_{token}",
            _decimal,
            minimum,
            f"The least {token} returned automatically to the sender of a deposit that pays "
            "no order (or of an over-payment's excess); less is kept for staff to return.",
            low=0,
            high=Decimal("1000"),
        )
    )
    for token, minimum in (("USDT", "0.50"), ("USDC", "0.50"), ("ETH", "0.0002"))
}
RECONCILE_STUCK_MINUTES = _declare(
    Option(
        "RECONCILE_STUCK_MINUTES",
        _integer,
        "30",
        "escrow_reconcile reports a completed order whose payout, or an expired order whose "
        "refund, is not confirmed after this many minutes.",
        low=1,
        high=7 * 24 * 60,
        unit=MINUTES,
    )
)

AUDIT_RETENTION_MONTHS = _declare(
    Option(
        "AUDIT_RETENTION_MONTHS",
        _integer,
        "24",
        "Months of audit log kept in the database; older months are archived to S3, "
        "verified there, and only then dropped (needs KIBO_AUDIT_ARCHIVE_BUCKET).",
        low=3,
        high=240,
    )
)

# --- reading the table --------------------------------------------------------------------

# The values are cached under a versioned key. An edit through config_set (and the admin)
# gives the config a new version when it commits, so no process can put back a value it read
# before the commit: it would put it under the old version. The timeout bounds how long a
# change made behind Django's back (raw SQL) can go unseen.
CONFIG_GENERATION = "system-config"  # renewed by kibo.services.config_set
CONFIG_CACHE_SECONDS = 60

# A version's values never change, so each process also keeps the current version's values
# (for as long as the shared cache would): a read costs one cache round trip, not two.
_local: dict[str, tuple[float, dict[str, str]]] = {}


def config_version() -> str:
    return current_generation(CONFIG_GENERATION)


def config_values() -> dict[str, str]:
    """Every stored value, by key, as text."""
    version = config_version()
    held = _local.get(version)
    if held is not None and time.monotonic() - held[0] < CONFIG_CACHE_SECONDS:
        return held[1]
    key = f"system-config:{version}"
    values: dict[str, str] | None = cache.get(key)
    if values is None:
        values = dict(SystemConfig.objects.values_list("key", "value"))
        cache.set(key, values, CONFIG_CACHE_SECONDS)
    _local.clear()
    _local[version] = (time.monotonic(), values)
    return values
