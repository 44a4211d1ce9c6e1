"""Locks on an ally's rows, after the user they belong to (the order in kibo.locks); the
presence rows after the orders whose expiry counts against them."""

from allies.models import AllyApplication, AllyPenalty, AllyPresence


def lock_penalty(penalty_id) -> AllyPenalty:
    return AllyPenalty.objects.select_for_update().get(pk=penalty_id)


def lock_application(application_id) -> AllyApplication:
    return AllyApplication.objects.select_for_update().get(pk=application_id)


def lock_presence(ally_id) -> AllyPresence:
    """The ally's presence, created offline if the ally never switched, locked."""
    presence, _created = AllyPresence.objects.select_for_update().get_or_create(ally_id=ally_id)
    return presence


def lock_presences(ally_ids) -> None:
    """Lock these allies' presence rows (made, offline, where missing), in primary-key
    order, so a switch waits for what counts against them."""
    AllyPresence.objects.bulk_create(
        [AllyPresence(ally_id=ally_id) for ally_id in ally_ids], ignore_conflicts=True
    )
    list(
        AllyPresence.objects.select_for_update()
        .filter(ally_id__in=ally_ids)
        .order_by("ally_id")
        .values_list("ally_id", flat=True)
    )
