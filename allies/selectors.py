from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

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


def approved_application(*, user: User) -> AllyApplication | None:
    """The application staff approved the user as an ally by (None for a user who is not
    an ally). Its country is where the ally works: what an ally may see and take is decided
    by it, never by a country a session holds."""
    if user.role != User.Role.ALLY:
        return None
    approved = user.ally_applications.filter(status=AllyApplication.Status.APPROVED)
    return approved.order_by("-decided_at").first()


def country_change_refusal(*, user: User) -> str | None:
    """Why the user may not pick another country now, or None if they may. An ally works in
    the country staff approved, and an applicant in the one they applied for: only staff
    change those (allies.services.user_country_change). A payer's country is fixed by the
    first order."""
    if user.role == User.Role.ALLY:
        return _("You are an ally of the country Kibo approved you for; write to us to change it.")
    if pending_application(user=user) is not None:
        return _("Your application as an ally is for the country you chose; it can't change now.")
    if user.orders.exists():
        return _("Your country can't change after your first order.")
    return None
