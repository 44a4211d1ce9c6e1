from collections.abc import Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from allies.locks import lock_application, lock_penalty
from allies.models import AllyApplication, AllyPenalty
from allies.ports import payers_orders
from allies.selectors import (
    approved_application,
    country_change_refusal,
    pending_application,
    standing_generation,
)
from audit.models import Action
from audit.services import log_action, log_actions
from kibo.cache import renew_generations
from kibo.db import in_callers_transaction
from kibo.errors import Conflict, DomainError, NotFound
from kibo.locks import lock_user
from kibo.models import Country, User
from kibo.notices import compose, notify
from kibo.services import wallet_refuse_if_blocked, wallet_refuse_if_still_blocked


@transaction.atomic
def ally_penalize(
    *,
    ally: User,
    order,
    reason: str,
    minutes: int,
    staff: User | None = None,
    note: str = "",
) -> AllyPenalty:
    """Bar an ally from taking orders for `minutes`; once per (order, reason) for an order.
    `staff` is who decided it, when a person did, and `note` why (both in the audit entry)."""
    if order is not None:
        return allies_penalize(
            stalled=[(ally, order)], reason=reason, minutes=minutes, staff=staff, note=note
        )[0]
    penalty = AllyPenalty.objects.create(
        ally=ally,
        reason=reason,
        penalty_minutes=minutes,
        penalty_until=timezone.now() + timedelta(minutes=minutes),
    )
    log_actions([_penalized(penalty, order=None, staff=staff, note=note)])
    renew_generations(standing_generation(ally.pk))
    return penalty


@transaction.atomic
def allies_penalize(
    *,
    stalled: Sequence[tuple[User, Model]],  # (ally, order)
    reason: str,
    minutes: int,
    staff: User | None = None,
    note: str = "",
):
    """Penalize each (ally, order) pair once for `reason`; returns a penalty per pair."""
    until = timezone.now() + timedelta(minutes=minutes)
    orders = [order for _, order in stalled]
    existing = {p.order_id: p for p in AllyPenalty.objects.filter(order__in=orders, reason=reason)}
    new = {
        order.pk: AllyPenalty(
            ally=ally, order=order, reason=reason, penalty_minutes=minutes, penalty_until=until
        )
        for ally, order in stalled
        if order.pk not in existing
    }
    AllyPenalty.objects.bulk_create(new.values())
    renew_generations(*{standing_generation(p.ally_id) for p in new.values()})
    log_actions([_penalized(p, order=p.order, staff=staff, note=note) for p in new.values()])
    return [existing.get(order.pk) or new[order.pk] for _, order in stalled]


@in_callers_transaction
def penalty_end(*, penalty_id) -> AllyPenalty | None:
    """End a running penalty now (the caller audits why); None if it had already ended."""
    now = timezone.now()
    penalty = lock_penalty(penalty_id)
    if penalty.penalty_until <= now:
        return None
    penalty.penalty_until = now
    penalty.save(update_fields=["penalty_until"])
    renew_generations(standing_generation(penalty.ally_id))
    return penalty


@transaction.atomic
def ally_penalty_lift(*, penalty_id, staff: User, note: str) -> AllyPenalty | None:
    """Staff lift a running penalty, saying why (audited: PENALTY_LIFTED). Penalties are
    created, lifted and changed only through these services, never edited by hand."""
    if not staff.is_staff:
        raise NotFound(_("No such penalty."))
    if not note.strip():
        raise DomainError("Write a note saying why.")
    penalty = penalty_end(penalty_id=penalty_id)
    if penalty is not None:
        log_action(
            action=Action.PENALTY_LIFTED,
            order_id=penalty.order_id,
            actor_wallet=staff.wallet_address,
            metadata={
                "penalty": str(penalty.pk),
                "ally": penalty.ally.wallet_address,
                "reason": penalty.reason,
                "staff": str(staff),
                "note": note.strip(),
            },
        )
        notify(user_ids=[penalty.ally_id], notice=_lifted_notice())
    return penalty


def _lifted_notice():
    return compose(
        "penalty-lifted",
        lambda: (_("Your penalty is lifted"), _("Our staff lifted it: you can take orders again.")),
        url=reverse("allies:board"),
        tag="penalty",
    )


def _penalized(penalty: AllyPenalty, *, order, staff: User | None = None, note: str = "") -> dict:
    metadata = {
        "ally": penalty.ally.wallet_address,
        "reason": penalty.reason,
        "minutes": penalty.penalty_minutes,
        "until": penalty.penalty_until.isoformat(),
    }
    if staff is not None:
        metadata["staff"] = str(staff)
    if note:
        metadata["note"] = note
    return {
        "action": Action.ALLY_PENALIZED,
        "order": order,
        "actor_wallet": staff.wallet_address if staff is not None else None,
        "metadata": metadata,
    }


def ally_apply(*, user: User, country: str, display_name: str, bank: str) -> AllyApplication:
    """A signed-in wallet asks to become an ally of its country; staff decide.

    Applying again while an application waits returns that one unchanged. A blocked wallet
    is refused (and the attempt recorded).
    """
    wallet_refuse_if_blocked(wallet=user.wallet_address, attempt="apply as an ally")
    return _ally_apply(user=user, country=country, display_name=display_name, bank=bank)


@transaction.atomic
def _ally_apply(*, user: User, country: str, display_name: str, bank: str) -> AllyApplication:
    user = lock_user(user.pk)
    wallet_refuse_if_still_blocked(wallet=user.wallet_address)
    display_name, bank = (display_name or "").strip(), (bank or "").strip()
    if user.is_staff:
        raise DomainError(_("Staff accounts can't become allies."))
    if user.role == User.Role.ALLY:
        raise Conflict(_("You are an ally already."))
    pending = pending_application(user=user)
    if pending is not None:
        return pending
    if country not in Country.values:
        raise DomainError(_("Choose Bolivia, Mexico or Argentina."))
    if not display_name or len(display_name) > 60:
        raise DomainError(_("Give the name clients will see, up to 60 characters."))
    if not bank or len(bank) > 80:
        raise DomainError(_("Say which bank you pay from, up to 80 characters."))
    if payers_orders().pays_an_order(user_id=user.pk):
        raise Conflict(_("Finish the order you are paying first."))
    application = AllyApplication.objects.create(
        user=user, country=country, display_name=display_name, bank=bank
    )
    log_action(
        action=Action.ALLY_APPLIED,
        actor_wallet=user.wallet_address,
        metadata={"application": str(application.pk), "country": country, "bank": bank},
    )
    return application


@transaction.atomic
def ally_application_decide(*, application_id, staff: User, approve: bool) -> AllyApplication:
    """Staff approve (the wallet becomes a verified ally of that country) or reject."""
    if not staff.is_staff:
        raise NotFound(_("No such application."))
    user_id = (
        AllyApplication.objects.filter(pk=application_id).values_list("user_id", flat=True).first()
    )
    if user_id is None:
        raise NotFound(_("No such application."))
    user = lock_user(user_id)  # users before their rows
    application = lock_application(application_id)
    decision = AllyApplication.Status.APPROVED if approve else AllyApplication.Status.REJECTED
    if application.status == decision:
        return application
    if application.status != AllyApplication.Status.PENDING:
        raise Conflict(_("This application was decided already."))
    if approve:
        if payers_orders().pays_an_order(user_id=user.pk):
            raise Conflict(_("The applicant is paying an order; approve once it is finished."))
        user.role, user.verified, user.country = User.Role.ALLY, True, application.country
        user.save(update_fields=["role", "verified", "country"])
    application.status = decision
    application.decided_at = timezone.now()
    application.decided_by = staff
    application.save(update_fields=["status", "decided_at", "decided_by"])
    log_action(
        action=Action.ALLY_APPROVED if approve else Action.ALLY_REJECTED,
        actor_wallet=staff.wallet_address,
        metadata={
            "application": str(application.pk),
            "ally": user.wallet_address,
            "country": application.country,
            "staff": str(staff),
        },
    )
    return application


# --- a user's country ---------------------------------------------------------------------


@transaction.atomic
def user_country_set(*, user: User, country: str) -> User:
    """The user picks the country whose QRs they pay. It changes until the first order, and
    never for an ally or an applicant (country_change_refusal says why)."""
    if country not in Country.values:
        raise DomainError(_("Choose Bolivia, Mexico or Argentina."))
    user = lock_user(user.pk)
    if user.country == country:
        return user
    refusal = country_change_refusal(user=user)
    if refusal is not None:
        raise Conflict(refusal)
    user.country = country
    user.save(update_fields=["country"])
    return user


@transaction.atomic
def user_country_change(*, user_id, country: str, staff: User) -> User:
    """Staff move a user to another country, audited (COUNTRY_CHANGED). For an ally this is
    the country they are approved for: their approved application says so from now on, and
    the board and taking an order follow it."""
    if not staff.is_staff:
        raise NotFound(_("No such user."))
    if country not in Country.values:
        raise DomainError(_("Choose Bolivia, Mexico or Argentina."))
    user = lock_user(user_id)
    old = user.country
    if old == country:
        return user
    if payers_orders().pays_an_order(user_id=user.pk):
        raise Conflict(_("The user is paying an order; change the country once it is finished."))
    approved = approved_application(user=user)
    if approved is not None:
        approved = lock_application(approved.pk)
        approved.country = country
        approved.save(update_fields=["country"])
    user.country = country
    user.save(update_fields=["country"])
    renew_generations(standing_generation(user.pk))
    log_action(
        action=Action.COUNTRY_CHANGED,
        actor_wallet=staff.wallet_address,
        metadata={"user": user.wallet_address, "old": old, "new": country, "staff": str(staff)},
    )
    return user
