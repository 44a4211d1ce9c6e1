import time
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache

from kibo.cache import current_generation
from kibo.errors import ConfigMissing
from kibo.models import BlockedWallet, SystemConfig

# The values are cached under a versioned key. An edit through config_set (and the admin)
# gives the config a new version when it commits, so no process can put back a value it read
# before the commit: it would put it under the old version. The timeout bounds how long a
# change made behind Django's back (raw SQL) can go unseen.
CONFIG_GENERATION = "system-config"  # renewed by kibo.services.config_set
CONFIG_CACHE_SECONDS = 60


def _config_version() -> str:
    return current_generation(CONFIG_GENERATION)


# A version's values never change, so each process also keeps the current version's values
# (for as long as the shared cache would): a read costs one cache round trip, not two.
_local: dict[str, tuple[float, dict[str, str]]] = {}


def _config_values() -> dict[str, str]:
    version = _config_version()
    held = _local.get(version)
    if held is not None and time.monotonic() - held[0] < CONFIG_CACHE_SECONDS:
        return held[1]
    key = f"system-config:{version}"
    values = cache.get(key)
    if values is None:
        values = dict(SystemConfig.objects.values_list("key", "value"))
        cache.set(key, values, CONFIG_CACHE_SECONDS)
    _local.clear()
    _local[version] = (time.monotonic(), values)
    return values


def get_config(key: str) -> str:
    """The value of a SYSTEM_CONFIG key; a missing key is an operator error, not a default."""
    try:
        return _config_values()[key]
    except KeyError:
        raise ConfigMissing(f"SYSTEM_CONFIG has no key {key!r}.") from None


def get_config_int(key: str) -> int:
    return int(get_config(key))


def get_config_decimal(key: str) -> Decimal:
    return Decimal(get_config(key))


def get_config_minutes(key: str) -> timedelta:
    """A duration kept in minutes; fractions are allowed ("0.5" is thirty seconds)."""
    return timedelta(seconds=float(get_config_decimal(key) * 60))


def is_wallet_blocked(*, wallet: str) -> bool:
    """Whether staff block this (EIP-55) wallet now; one indexed lookup."""
    return BlockedWallet.objects.filter(wallet_address=wallet, unblocked_at__isnull=True).exists()
