import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

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
        permissions = [
            ("view_private_files", "Can open receipts, dispute files and QR pictures"),
        ]
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

    def timer_ran_out(self, now) -> bool:
        """Whether the timer of the order's state has run out (a final state has none)."""
        return self.expires_at is not None and self.expires_at <= now


class LateProofDecision(models.TextChoices):
    PENDING = "PENDING", _("Waiting for our staff")
    ALLY_PAID = "ALLY_PAID", _("The ally did pay the QR")
    NOT_PAID = "NOT_PAID", _("The receipt does not show a payment")


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
    decision = models.CharField(
        max_length=10, choices=LateProofDecision.choices, default=LateProofDecision.PENDING
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decision_note = models.TextField(blank=True)

    class Meta:
        db_table = "late_proofs"
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=["PENDING", "ALLY_PAID", "NOT_PAID"]),
                name="late_proofs_decision_valid",
            ),
            models.CheckConstraint(
                condition=Q(decision="PENDING")
                | Q(decided_at__isnull=False, decided_by__isnull=False, decision_note__gt=""),
                name="late_proofs_decided_by_staff_with_note",
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="idx_late_proofs_pending",
                condition=Q(decision="PENDING"),
            ),
        ]

    def __str__(self):
        return f"late receipt for {self.order_id} at {self.received_at:%Y-%m-%d %H:%M}"


class Dispute(models.Model):
    """A question only staff can answer about an order: was the shop paid (the payer asks,
    while the ally's payout is held), or was a penalty fair (the ally asks, within a day).

    While a payer's dispute is open the ally's payout is FROZEN. Staff uphold it (the payer
    is refunded, the ally penalized) or reject it (the payout goes out).
    """

    class Kind(models.TextChoices):
        NOT_PAID = "NOT_PAID", _("The shop was not paid")
        PENALTY = "PENALTY", _("The ally contests a penalty")

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Waiting for our staff")
        UPHELD = "UPHELD", pgettext_lazy("a dispute", "Upheld")
        REJECTED = "REJECTED", pgettext_lazy("a dispute", "Rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="disputes")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    statement = models.TextField()
    penalty = models.ForeignKey(
        "allies.AllyPenalty",
        on_delete=models.PROTECT,
        related_name="disputes",
        null=True,
        blank=True,
        help_text="The penalty an ally contests.",
    )
    answer = models.TextField(blank=True, help_text="The other side's account.")
    answered_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decision_note = models.TextField(blank=True)

    class Meta:
        db_table = "disputes"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["NOT_PAID", "PENALTY"]), name="disputes_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["OPEN", "UPHELD", "REJECTED"]),
                name="disputes_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind="PENALTY", penalty__isnull=False)
                | Q(kind="NOT_PAID", penalty__isnull=True),
                name="disputes_penalty_when_contested",
            ),
            models.CheckConstraint(
                condition=Q(status="OPEN")
                | Q(decided_at__isnull=False, decided_by__isnull=False, decision_note__gt=""),
                name="disputes_decided_by_staff_with_note",
            ),
            # One open question of each kind per order: an ally's appeal of a penalty never
            # holds up the payer's dispute, whose hold runs out.
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(status="OPEN"),
                name="disputes_one_open_per_order_and_kind",
            ),
            # The payer asks once about an order; an ally contests a penalty once.
            models.UniqueConstraint(
                fields=["order"], condition=Q(kind="NOT_PAID"), name="disputes_not_paid_once"
            ),
            models.UniqueConstraint(
                fields=["penalty"],
                condition=Q(penalty__isnull=False),
                name="disputes_penalty_once",
            ),
        ]
        indexes = [
            models.Index(
                fields=["opened_at"], name="idx_disputes_open", condition=Q(status="OPEN")
            ),
            # Which days the daily rollup must redo (orders.services.daily_stats_rollup).
            models.Index(
                fields=["decided_at"],
                name="idx_disputes_decided",
                condition=Q(decided_at__isnull=False),
            ),
            models.Index(fields=["-opened_at"], name="idx_disputes_opened"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.status}), order {self.order_id}"


class DisputeEvidence(models.Model):
    """A file either side adds to a dispute: checked and stored like a receipt, privately."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="evidence")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    file = models.FileField(upload_to="evidence/")
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "dispute_evidence"
        verbose_name_plural = "dispute evidence"
        ordering = ["created_at"]

    def __str__(self):
        return f"evidence for {self.dispute_id} from {self.submitted_by_id}"


class DailyStats(models.Model):
    """One day's orders in one currency, rolled up by beat once the day is over, so the
    staff console draws thirty days without reading thirty days of orders.

    The day is the local day (KIBO_TIME_ZONE) the orders were created on; their outcome is
    the one they had when the day was rolled up (beat redoes the last two days).
    """

    day = models.DateField()
    fiat_currency = models.CharField(max_length=3, choices=Fiat.choices)
    orders = models.PositiveIntegerField(help_text="Orders created that day.")
    completed = models.PositiveIntegerField()
    failed = models.PositiveIntegerField(help_text="Expired or refunded.")
    volume_fiat = models.DecimalField(
        max_digits=16, decimal_places=2, help_text="The fiat paid for the completed orders."
    )
    volume_crypto = models.JSONField(
        default=dict, help_text="Per token, the crypto the completed orders paid in."
    )
    timeouts = models.JSONField(
        default=dict, help_text="Per state, the orders whose timer ran out in it that day."
    )
    median_paid_to_completed = models.DurationField(null=True, blank=True)
    active_allies = models.PositiveIntegerField(
        default=0, help_text="Allies who took one of its orders."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "daily_stats"
        verbose_name_plural = "daily stats"
        constraints = [
            models.UniqueConstraint(fields=["day", "fiat_currency"], name="daily_stats_once"),
        ]

    def __str__(self):
        return f"{self.day} {self.fiat_currency}: {self.orders} orders"


class OrderCall(models.Model):
    """Kibo's call to a country's allies when an order reached the board (orders.calls):
    how many allies were online, whom it told. While the order waits, `told` says whose
    streak of orders let run out it counts in; once it leaves the board it is emptied, and
    `online_at_end` says whether anyone was online when its time ran out."""

    order = models.OneToOneField(
        Order, on_delete=models.CASCADE, primary_key=True, related_name="call"
    )
    called_at = models.DateTimeField()
    online = models.PositiveIntegerField(help_text="Allies of the country online then.")
    told = ArrayField(models.UUIDField(), default=list, blank=True)
    told_count = models.PositiveIntegerField(help_text="Allies told: online and free to take it.")
    online_at_end = models.PositiveIntegerField(
        null=True, blank=True, help_text="Allies online when it ran out untaken."
    )

    class Meta:
        db_table = "order_calls"
        indexes = [
            # the console's day: the calls since midnight
            models.Index(fields=["called_at"], name="idx_order_calls_called_at"),
        ]

    def __str__(self):
        return f"call for {self.order_id}: {self.told_count} told"
