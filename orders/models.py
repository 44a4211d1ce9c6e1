import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from escrow.models import TX_HASH_RE
from escrow.networks import Network
from quotes.models import Fiat, Token


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "PENDING_PAYMENT", _("Waiting for your payment")
    AVAILABLE = "AVAILABLE", _("Looking for an ally")
    TAKEN = "TAKEN", _("An ally is paying the QR")
    COMPLETED = "COMPLETED", _("Paid")
    EXPIRED = "EXPIRED", _("Expired")
    REFUNDED = "REFUNDED", _("Refunded")


OPEN_STATUSES = (OrderStatus.PENDING_PAYMENT, OrderStatus.AVAILABLE, OrderStatus.TAKEN)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Their own indexes would repeat the first column of idx_orders_user and idx_orders_ally.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    ally = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="taken_orders",
        db_index=False,
        null=True,
        blank=True,
    )
    qr_data = models.TextField(help_text="The payment QR's text, as scanned.")
    amount_fiat = models.DecimalField(max_digits=10, decimal_places=2)
    fiat_currency = models.CharField(max_length=3, choices=Fiat.choices)
    amount_crypto = models.DecimalField(
        max_digits=18, decimal_places=8, help_text="What the user must deposit."
    )
    fee_crypto = models.DecimalField(
        max_digits=18, decimal_places=8, help_text="Kibo's fee, kept from the deposit."
    )
    crypto_token = models.CharField(max_length=10, choices=Token.choices)
    network = models.CharField(max_length=20, choices=Network.choices)
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=8)
    quote = models.ForeignKey("quotes.Quote", on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    deposit_tx_hash = models.CharField(max_length=66, null=True, blank=True)
    release_tx_hash = models.CharField(max_length=66, null=True, blank=True)
    proof_file = models.FileField(upload_to="proofs/", null=True, blank=True)
    proof_sha256 = models.CharField(
        max_length=64, null=True, blank=True, help_text="SHA-256 of the receipt as uploaded."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "orders"
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fiat__gt=0), name="orders_amount_fiat_positive"
            ),
            models.CheckConstraint(
                condition=Q(amount_crypto__gt=0), name="orders_amount_crypto_positive"
            ),
            models.CheckConstraint(
                condition=Q(fee_crypto__gte=0) & Q(fee_crypto__lt=models.F("amount_crypto")),
                name="orders_fee_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(exchange_rate__gt=0), name="orders_exchange_rate_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="orders_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(fiat_currency__in=Fiat.values), name="orders_fiat_currency_valid"
            ),
            models.CheckConstraint(
                condition=Q(crypto_token__in=Token.values), name="orders_crypto_token_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["TAKEN", "COMPLETED"])
                | (Q(ally__isnull=False) & Q(taken_at__isnull=False)),
                name="orders_taken_has_ally",
            ),
            models.CheckConstraint(
                condition=~Q(status="COMPLETED") | Q(completed_at__isnull=False),
                name="orders_completed_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=OPEN_STATUSES) | Q(expires_at__isnull=False),
                name="orders_open_has_expiry",
            ),
            models.CheckConstraint(
                condition=Q(deposit_tx_hash__isnull=True) | Q(deposit_tx_hash__regex=TX_HASH_RE),
                name="orders_deposit_tx_hash_format",
            ),
            models.CheckConstraint(
                condition=Q(release_tx_hash__isnull=True) | Q(release_tx_hash__regex=TX_HASH_RE),
                name="orders_release_tx_hash_format",
            ),
            # A user pays one QR at a time; an ally pays one QR at a time.
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status__in=OPEN_STATUSES),
                name="orders_one_open_per_user",
            ),
            models.UniqueConstraint(
                fields=["ally"], condition=Q(status="TAKEN"), name="orders_one_taken_per_ally"
            ),
            # A bank receipt proves one payment: the same file cannot complete two orders.
            models.UniqueConstraint(
                fields=["proof_sha256"],
                condition=Q(proof_sha256__isnull=False),
                name="orders_one_order_per_receipt",
            ),
        ]
        indexes = [
            models.Index(
                fields=["fiat_currency", "created_at"],
                name="idx_orders_available",
                condition=Q(status="AVAILABLE"),
            ),
            models.Index(
                fields=["expires_at"],
                name="idx_orders_timeout",
                condition=Q(status__in=OPEN_STATUSES),
            ),
            models.Index(fields=["user", "-created_at"], name="idx_orders_user"),
            models.Index(fields=["ally", "status"], name="idx_orders_ally"),
            models.Index(fields=["status", "created_at"], name="idx_orders_status_created"),
            # What the admin lists and searches by, at millions of rows.
            models.Index(fields=["-created_at"], name="idx_orders_created"),
            models.Index(
                fields=["deposit_tx_hash"],
                name="idx_orders_deposit_tx",
                condition=Q(deposit_tx_hash__isnull=False),
            ),
            models.Index(
                fields=["release_tx_hash"],
                name="idx_orders_release_tx",
                condition=Q(release_tx_hash__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.amount_fiat} {self.fiat_currency} ({self.status})"

    @property
    def payout_crypto(self):
        return self.amount_crypto - self.fee_crypto

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class LateProof(models.Model):
    """A receipt that arrived after its order's timer ran out: kept for staff to review.

    It changes nothing about the order; staff decide whether the ally did pay the QR.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="late_proofs")
    ally = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="late_proofs"
    )
    proof_file = models.FileField(upload_to="proofs/")
    proof_sha256 = models.CharField(max_length=64)
    order_status = models.CharField(
        max_length=20, choices=OrderStatus.choices, help_text="The order's state when it came."
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "late_proofs"
        ordering = ["-received_at"]

    def __str__(self):
        return f"late receipt for {self.order_id} at {self.received_at:%Y-%m-%d %H:%M}"
