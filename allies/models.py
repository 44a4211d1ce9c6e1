import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class AllyPenalty(models.Model):
    """While `penalty_until` is in the future the ally cannot take orders."""

    class Reason(models.TextChoices):
        TIMEOUT = "TIMEOUT", "Did not upload proof in time"
        FAKE_PROOF = "FAKE_PROOF", "Uploaded a false proof"
        NO_PAYMENT = "NO_PAYMENT", "Did not pay the QR"

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
        ]

    def __str__(self):
        return f"{self.ally} {self.reason} until {self.penalty_until:%Y-%m-%d %H:%M}"
