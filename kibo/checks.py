"""System checks on the database, which `migrate` runs before it changes anything (and
`manage.py check --database default` on demand)."""

from django.core.checks import Error, Tags, register
from django.db.utils import DatabaseError

from kibo.config import OPTIONS, InvalidConfigValue
from kibo.models import SystemConfig


@register(Tags.database)
def stored_config_values_are_ones_their_options_take(app_configs=None, databases=None, **kwargs):
    """A value stored before an option's bounds were declared, or written with raw SQL,
    would make every read of it fail: say so before anything runs on it. Like Django's own
    database checks, it reads the database only when asked to (migrate, check --database):
    never when a process merely starts."""
    if not databases or "default" not in databases:
        return []
    try:
        stored = list(SystemConfig.objects.values_list("key", "value"))
    except DatabaseError:  # the table does not exist yet: nothing is stored
        return []
    errors = []
    for key, value in stored:
        option = OPTIONS.get(key)
        if option is None:
            continue  # a key no longer read is harmless
        try:
            option.read(value)
        except InvalidConfigValue as refused:
            errors.append(
                Error(
                    f"SYSTEM_CONFIG {key}={value!r}: {refused.message}",
                    hint="Change it in the admin (or with SQL) to a value the option takes.",
                    id="kibo.E001",
                )
            )
    return errors
