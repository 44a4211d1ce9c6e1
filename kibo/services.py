import uuid

from django.core.cache import cache
from django.db import transaction

from kibo.models import SystemConfig
from kibo.selectors import CONFIG_VERSION_KEY


@transaction.atomic
def config_set(*, key: str, value: str, description: str | None = None) -> SystemConfig:
    """Create or change a SYSTEM_CONFIG key; every process sees it once this commits."""
    config, _ = SystemConfig.objects.select_for_update().get_or_create(key=key)
    config.value = value
    if description is not None:
        config.description = description
    config.save()
    # A new version now, so this transaction reads its own change; and again on commit, so
    # what other processes cached meanwhile (the old value) is never read again.
    _new_config_version()
    transaction.on_commit(_new_config_version)
    return config


def _new_config_version() -> None:
    cache.set(CONFIG_VERSION_KEY, uuid.uuid4().hex, timeout=None)
