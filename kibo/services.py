from django.core.cache import cache
from django.db import transaction

from kibo.models import SystemConfig
from kibo.selectors import CONFIG_CACHE_KEY


@transaction.atomic
def config_set(*, key: str, value: str, description: str | None = None) -> SystemConfig:
    """Create or change a SYSTEM_CONFIG key; every process sees it once this commits."""
    config, _ = SystemConfig.objects.select_for_update().get_or_create(key=key)
    config.value = value
    if description is not None:
        config.description = description
    config.save()
    # Now, so this transaction reads its own change; and on commit, in case another process
    # cached the old value meanwhile.
    cache.delete(CONFIG_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CONFIG_CACHE_KEY))
    return config
