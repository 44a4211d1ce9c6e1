import uuid

from django.db import models
from django.db.models.fields.json import KT


class Action(models.TextChoices):
    ORDER_CREATED = "ORDER_CREATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    PAYMENT_RECEIVED = "PAYMENT_RECEIVED"
    ORDER_TAKEN = "ORDER_TAKEN"
    PROOF_UPLOADED = "PROOF_UPLOADED"
    ORDER_COMPLETED = "ORDER_COMPLETED"
    ORDER_EXPIRED = "ORDER_EXPIRED"
    REFUND_PROCESSED = "REFUND_PROCESSED"
    ALLY_PENALIZED = "ALLY_PENALIZED"
    ALLY_APPLIED = "ALLY_APPLIED"
    ALLY_APPROVED = "ALLY_APPROVED"
    ALLY_REJECTED = "ALLY_REJECTED"
    LATE_PROOF = "LATE_PROOF"
    ESCROW_RELEASED = "ESCROW_RELEASED"
    DEPOSIT_RETURNED = "DEPOSIT_RETURNED"
    DEPOSIT_REJECTED = "DEPOSIT_REJECTED"
    TRANSFER_FAILED = "TRANSFER_FAILED"
    TRANSFER_WAITING = "TRANSFER_WAITING"
    QUOTE_REJECTED = "QUOTE_REJECTED"
    WALLET_BLOCKED = "WALLET_BLOCKED"
    WALLET_UNBLOCKED = "WALLET_UNBLOCKED"
    BLOCKED_ATTEMPT = "BLOCKED_ATTEMPT"
    RELEASE_UNHELD = "RELEASE_UNHELD"
    DISPUTE_OPENED = "DISPUTE_OPENED"
    DISPUTE_ANSWERED = "DISPUTE_ANSWERED"
    DISPUTE_UPHELD = "DISPUTE_UPHELD"
    DISPUTE_REJECTED = "DISPUTE_REJECTED"
    LATE_PROOF_DECIDED = "LATE_PROOF_DECIDED"
    CONFIG_CHANGED = "CONFIG_CHANGED"
    COUNTRY_CHANGED = "COUNTRY_CHANGED"
    STAFF_LOCKED_OUT = "STAFF_LOCKED_OUT"
    STAFF_LOCKOUT_LIFTED = "STAFF_LOCKOUT_LIFTED"
    KEPT_DEPOSIT_RETURNED = "KEPT_DEPOSIT_RETURNED"
    PENALTY_LIFTED = "PENALTY_LIFTED"
    SENDER_PAUSED = "SENDER_PAUSED"
    SENDER_RESUMED = "SENDER_RESUMED"
    TRANSFER_RECOVERED = "TRANSFER_RECOVERED"
    AUDIT_ARCHIVED = "AUDIT_ARCHIVED"


class Log(models.Model):
    """The audit trail. Append-only: a database trigger rejects UPDATE and DELETE."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(  # indexed by idx_logs_order (order, created_at)
        "orders.Order",
        on_delete=models.DO_NOTHING,
        related_name="logs",
        null=True,
        blank=True,
        db_index=False,
    )
    action = models.CharField(max_length=40, choices=Action.choices)
    actor_wallet = models.CharField(max_length=42, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())

    class Meta:
        db_table = "logs"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["order", "created_at"], name="idx_logs_order"),
            models.Index(fields=["action", "-created_at"], name="idx_logs_action"),
            # What the admin lists and searches by, at millions of rows.
            models.Index(fields=["-created_at"], name="idx_logs_created"),
            models.Index(fields=["actor_wallet", "-created_at"], name="idx_logs_actor"),
            models.Index(KT("metadata__tx_hash"), name="idx_logs_tx_hash"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action}"
