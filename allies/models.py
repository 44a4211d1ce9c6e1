import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
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
