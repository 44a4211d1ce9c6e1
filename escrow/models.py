import uuid

from django.db import models
from django.db.models import Q

from escrow.networks import Network
from quotes.models import Token

TX_HASH_RE = r"^0x[0-9a-f]{64}$"


class EscrowAccount(models.Model):
    """The crypto one order put into escrow, and where it went."""

    class Status(models.TextChoices):
        LOCKED = "LOCKED"
        RELEASED = "RELEASED"
        REFUNDED = "REFUNDED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="escrow")
    amount = models.DecimalField(max_digits=18, decimal_places=8)
    token = models.CharField(max_length=10, choices=Token.choices)
    network = models.CharField(max_length=20, choices=Network.choices)
    deposit_tx_hash = models.CharField(max_length=66, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LOCKED)
    locked_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "escrow_accounts"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="escrow_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["LOCKED", "RELEASED", "REFUNDED"]),
                name="escrow_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(deposit_tx_hash__regex=TX_HASH_RE), name="escrow_deposit_tx_hash_format"
            ),
        ]
        indexes = [
            models.Index(
                fields=["network", "token"], name="idx_escrow_locked", condition=Q(status="LOCKED")
            ),
        ]

    def __str__(self):
        return f"{self.amount} {self.token} on {self.network} ({self.status})"


class RefundJob(models.Model):
    """Return an expired order's locked deposit to the user's wallet."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        PROCESSING = "PROCESSING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.OneToOneField(
        "orders.Order", on_delete=models.PROTECT, related_name="refund_job"
    )
    to_address = models.CharField(max_length=42)
    amount = models.DecimalField(max_digits=18, decimal_places=8)
    token = models.CharField(max_length=10, choices=Token.choices)
    network = models.CharField(max_length=20, choices=Network.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    tx_hash = models.CharField(max_length=66, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "refund_jobs"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "PROCESSING", "COMPLETED", "FAILED"]),
                name="refund_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="COMPLETED")
                | (Q(tx_hash__regex=TX_HASH_RE) & Q(processed_at__isnull=False)),
                name="refund_completed_has_tx",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="idx_refund_jobs_active",
                condition=Q(status__in=["PENDING", "PROCESSING"]),
            ),
        ]

    def __str__(self):
        return f"refund {self.amount} {self.token} to {self.to_address} ({self.status})"
