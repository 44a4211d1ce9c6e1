"""Locks on an ally's rows, after the user they belong to (the order in kibo.locks)."""

from allies.models import AllyApplication, AllyPenalty


def lock_penalty(penalty_id) -> AllyPenalty:
    return AllyPenalty.objects.select_for_update().get(pk=penalty_id)


def lock_application(application_id) -> AllyApplication:
    return AllyApplication.objects.select_for_update().get(pk=application_id)
