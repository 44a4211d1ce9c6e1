import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from kibo.models import Country


class AllyPenalty(models.Model):
    """While `penalty_until` is in the future the ally cannot take orders."""

    class Reason(models.TextChoices):
        TIMEOUT = "TIMEOUT", _("Did not upload proof in time")
        FAKE_PROOF = "FAKE_PROOF", _("Uploaded a false proof")
        NO_PAYMENT = "NO_PAYMENT", _("Did not pay the QR")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ally = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="penalties"
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="penalties", null=True, blank=True
    )
    reason = models.CharField(max_length=12, choices=Reason.choices)
    penalty_minutes = models.PositiveIntegerField()
    penalty_until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ally_penalties"
        verbose_name_plural = "ally penalties"
        constraints = [
            models.CheckConstraint(
                condition=Q(reason__in=["TIMEOUT", "FAKE_PROOF", "NO_PAYMENT"]),
                name="ally_penalties_reason_valid",
            ),
            models.CheckConstraint(
                condition=Q(penalty_minutes__gt=0), name="ally_penalties_minutes_positive"
            ),
            models.UniqueConstraint(
                fields=["order", "reason"], name="ally_penalties_once_per_order_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["ally", "-penalty_until"], name="idx_ally_penalties_active"),
            # Who is penalized now, across allies (the staff console).
            models.Index(fields=["penalty_until"], name="idx_ally_penalties_until"),
        ]

    def __str__(self):
        return f"{self.ally} {self.reason} until {self.penalty_until:%Y-%m-%d %H:%M}"


class AllyApplication(models.Model):
    """A wallet asking to become an ally of its country; staff approve or reject it."""

    class Status(models.TextChoices):
        PENDING = "PENDING", _("Waiting for approval")
        APPROVED = "APPROVED", _("Approved")
        REJECTED = "REJECTED", _("Rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ally_applications"
    )
    country = models.CharField(max_length=2, choices=Country.choices)
    display_name = models.CharField(max_length=60)
    bank = models.CharField(max_length=80, help_text="The bank the ally pays QRs from.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )

    class Meta:
        db_table = "ally_applications"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "APPROVED", "REJECTED"]),
                name="ally_applications_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="PENDING")
                | (Q(decided_at__isnull=False) & Q(decided_by__isnull=False)),
                name="ally_applications_decided_by_staff",
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status="PENDING"),
                name="ally_applications_one_pending_per_user",
            ),
        ]

    def __str__(self):
        return f"{self.display_name} ({self.country}, {self.status})"


class AllyPresence(models.Model):
    """Whether an ally is there to take orders (allies.presence): the switch on the board,
    which holds until the next turn of the ally's working hours, and otherwise the hours.
    Kibo tells online allies of new orders and counts them for payers; it switches off an
    ally who lets MISSED_IN_ROW_MAX orders it told them of run out in a row."""

    ally = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="ally_presence",
    )
    switched_on = models.BooleanField(
        null=True, blank=True, help_text="The switch's last position; empty: never switched."
    )
    switch_holds_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When working hours decide again; empty: until the ally switches.",
    )
    missed_in_row = models.PositiveSmallIntegerField(
        default=0, help_text="Orders Kibo told the ally of that ran out since their last take."
    )
    switched_off_for_missing = models.BooleanField(
        default=False, help_text="Kibo switched the ally off; the board says why."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ally_presence"
        verbose_name_plural = "ally presence"

    def __str__(self):
        return f"{self.ally_id} switched {self.switched_on}"

    def switch_holds(self, now) -> bool:
        """Whether the switch decides now (else the working hours do); the same rule in
        SQL is allies.presence._switch_holds."""
        return self.switched_on is not None and (
            self.switch_holds_until is None or self.switch_holds_until > now
        )


class WorkingHours(models.Model):
    """When an ally works on one weekday, in minutes after midnight in the ally's country's
    time: online from `starts` until `ends` unless they switch off."""

    ally = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(help_text="Monday is 0, Sunday 6.")
    starts = models.PositiveSmallIntegerField(help_text="Minutes after midnight.")
    ends = models.PositiveSmallIntegerField(help_text="Minutes after midnight; 1440 is midnight.")

    class Meta:
        db_table = "ally_working_hours"
        verbose_name_plural = "working hours"
        constraints = [
            models.UniqueConstraint(fields=["ally", "weekday"], name="working_hours_once_a_day"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="working_hours_weekday"),
            models.CheckConstraint(
                condition=Q(starts__lt=F("ends")) & Q(ends__lte=24 * 60),
                name="working_hours_a_span_of_the_day",
            ),
        ]
        indexes = [
            # Who works now: one weekday's spans, across allies.
            models.Index(fields=["weekday", "starts", "ends"], name="idx_working_hours_now"),
        ]

    def __str__(self):
        return f"{self.ally_id} on day {self.weekday}: {self.starts}-{self.ends}"


class PresenceSample(models.Model):
    """How many allies of a country were online at a moment (beat, every few minutes): the
    staff console's line over the day."""

    country = models.CharField(max_length=2, choices=Country.choices)
    taken_at = models.DateTimeField()
    online = models.PositiveIntegerField()

    class Meta:
        db_table = "ally_presence_samples"
        indexes = [
            models.Index(fields=["country", "taken_at"], name="idx_presence_samples"),
            models.Index(fields=["taken_at"], name="idx_presence_samples_all"),  # all countries
        ]

    def __str__(self):
        return f"{self.online} online in {self.country} at {self.taken_at:%H:%M}"
