"""Locks on an ally's rows, after the user they belong to (the order in kibo.locks)."""

from allies.models import AllyApplication, AllyPenalty, AllyPresence


def lock_penalty(penalty_id) -> AllyPenalty:
    return AllyPenalty.objects.select_for_update().get(pk=penalty_id)


def lock_application(application_id) -> AllyApplication:
    return AllyApplication.objects.select_for_update().get(pk=application_id)


def lock_presence(ally_id) -> AllyPresence:
    """The ally's presence, created offline if the ally never switched, locked."""
    presence, _created = AllyPresence.objects.select_for_update().get_or_create(ally_id=ally_id)
    return presence
