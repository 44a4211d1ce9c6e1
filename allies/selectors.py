from datetime import datetime

from django.utils import timezone

from allies.models import AllyApplication, AllyPenalty
from kibo.models import User


def is_ally_penalized(*, ally: User, at: datetime | None = None) -> bool:
    return AllyPenalty.objects.filter(ally=ally, penalty_until__gt=at or timezone.now()).exists()


def active_penalty(*, ally: User, at: datetime | None = None) -> AllyPenalty | None:
    return (
        AllyPenalty.objects.filter(ally=ally, penalty_until__gt=at or timezone.now())
        .order_by("-penalty_until")
        .first()
    )


def standing_generation(ally_id) -> str:
    """The cache generation of what an ally's board and record show (orders.board); every
    service that changes an ally's penalty, order in hand or disputes renews it."""
    return f"ally:{ally_id}"


def pending_application(*, user: User) -> AllyApplication | None:
    return user.ally_applications.filter(status=AllyApplication.Status.PENDING).first()
