from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from allies.models import AllyPenalty
from audit.models import Action
from audit.services import log_action
from kibo.models import User


@transaction.atomic
def ally_penalize(*, ally: User, order, reason: str, minutes: int) -> AllyPenalty:
    """Bar an ally from taking orders for `minutes`; once per (order, reason) for an order."""
    until = timezone.now() + timedelta(minutes=minutes)
    if order is None:
        penalty, created = (
            AllyPenalty.objects.create(
                ally=ally, reason=reason, penalty_minutes=minutes, penalty_until=until
            ),
            True,
        )
    else:
        penalty, created = AllyPenalty.objects.get_or_create(
            ally=ally,
            order=order,
            reason=reason,
            defaults={"penalty_minutes": minutes, "penalty_until": until},
        )
    if created:
        log_action(
            action=Action.ALLY_PENALIZED,
            order=order,
            actor_wallet=None,
            metadata={
                "ally": ally.wallet_address,
                "reason": reason,
                "minutes": minutes,
                "until": penalty.penalty_until.isoformat(),
            },
        )
    return penalty
