from decimal import Decimal

from django.core.cache import cache

from kibo.errors import ConfigMissing
from kibo.models import SystemConfig

CONFIG_CACHE_KEY = "system-config"
# Edits through config_set (and the admin) clear the cache at once; the timeout bounds how
# long a change made behind Django's back (raw SQL) can go unseen.
CONFIG_CACHE_SECONDS = 60


def _config_values() -> dict[str, str]:
    values = cache.get(CONFIG_CACHE_KEY)
    if values is None:
        values = dict(SystemConfig.objects.values_list("key", "value"))
        cache.set(CONFIG_CACHE_KEY, values, CONFIG_CACHE_SECONDS)
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
