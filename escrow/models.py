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
    deposit_tx_hash = models.CharField(max_length=66)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LOCKED)
    locked_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "escrow_accounts"
        constraints = [
            # One deposit pays one order.
            models.UniqueConstraint(
                fields=["deposit_tx_hash"], name="escrow_accounts_one_per_deposit"
            ),
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
            models.Index(fields=["-locked_at"], name="idx_escrow_locked_at"),
        ]

    def __str__(self):
        return f"{self.amount} {self.token} on {self.network} ({self.status})"


def base_units(**options) -> models.DecimalField:
    """An on-chain amount in a token's base units: a uint256, exactly (NUMERIC(78, 0))."""
    return models.DecimalField(max_digits=78, decimal_places=0, **options)


class Deposit(models.Model):
    """A confirmed transfer of an allow-listed token into the escrow address.

    Unique on (network, tx_hash, log_index): one transfer can fund at most one order.
    What cannot be credited to an order (late, short, a second payment, the excess of an
    over-payment, an unknown sender) is returned to its sender by a RETURN transfer, unless
    it is dust (below RETURN_MIN_<TOKEN>): that is kept until staff return it.
    """

    class Outcome(models.TextChoices):
        CREDITED = "CREDITED", "Paid an order"
        RETURNED = "RETURNED", "Sent back to its sender"
        TREASURY = "TREASURY", "Operator funding"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    network = models.CharField(max_length=20, choices=Network.choices)
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField(help_text="-1 for the native coin, which has no log.")
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    token = models.CharField(max_length=10, choices=Token.choices)
    token_address = models.CharField(max_length=42, null=True, blank=True)
    sender = models.CharField(max_length=42)
    amount_base = base_units()
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="deposits", null=True, blank=True
    )
    credited_base = base_units(default=0)
    # What was not credited and is below RETURN_MIN_<TOKEN>: kept, not returned
    # automatically; staff may return it by hand (escrow.deposits.deposit_return_kept).
    kept_base = base_units(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "deposits"
        constraints = [
            models.UniqueConstraint(
                fields=["network", "tx_hash", "log_index"], name="deposits_once_per_transfer"
            ),
            models.CheckConstraint(condition=Q(amount_base__gt=0), name="deposits_amount_positive"),
            models.CheckConstraint(
                condition=Q(credited_base__gte=0) & Q(credited_base__lte=models.F("amount_base")),
                name="deposits_credit_within_amount",
            ),
            models.CheckConstraint(
                condition=~Q(outcome="CREDITED") | Q(order__isnull=False),
                name="deposits_credited_has_order",
            ),
            models.CheckConstraint(
                condition=Q(kept_base__gte=0)
                & Q(kept_base__lte=models.F("amount_base") - models.F("credited_base")),
                name="deposits_kept_within_the_rest",
            ),
            models.CheckConstraint(
                condition=Q(tx_hash__regex=TX_HASH_RE), name="deposits_tx_hash_format"
            ),
        ]
        indexes = [
            models.Index(fields=["order"], name="idx_deposits_order"),
            models.Index(fields=["-created_at"], name="idx_deposits_created"),
            models.Index(fields=["tx_hash"], name="idx_deposits_tx"),
            models.Index(fields=["sender"], name="idx_deposits_sender"),
            models.Index(
                fields=["-created_at"], condition=Q(kept_base__gt=0), name="idx_deposits_kept"
            ),
        ]

    def __str__(self):
        return f"{self.amount_base} base units of {self.token} from {self.sender}"


class Transfer(models.Model):
    """An outbox row: one intended transfer out of escrow, sent exactly once.

    Before anything is broadcast the signed bytes are stored (SignedTransaction), so a crash
    at any point resumes by re-sending the same bytes, never by signing a second transfer.
    """

    class Purpose(models.TextChoices):
        RELEASE = "RELEASE", "Pay the ally"
        REFUND = "REFUND", "Refund the user"
        RETURN = "RETURN", "Return an uncredited deposit"

    class Status(models.TextChoices):
        HELD = "HELD", "Held: the payer may still say the shop was not paid"
        FROZEN = "FROZEN", "Frozen: the payer disputes it; staff decide"
        CANCELLED = "CANCELLED", "Cancelled before it was signed: the dispute was upheld"
        PENDING = "PENDING", "Not signed yet"
        WAITING = "WAITING", "Waiting for funds in the escrow wallet"
        SIGNED = "SIGNED", "Signed and sent, waiting for the chain"
        CONFIRMED = "CONFIRMED", "Confirmed on chain"
        FAILED = "FAILED", "Failed; needs staff"

    UNFINISHED = (Status.PENDING, Status.WAITING, Status.SIGNED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="transfers", null=True, blank=True
    )
    deposit = models.ForeignKey(
        Deposit, on_delete=models.PROTECT, related_name="returns", null=True, blank=True
    )
    network = models.CharField(max_length=20, choices=Network.choices)
    token = models.CharField(max_length=10, choices=Token.choices)
    token_address = models.CharField(max_length=42, null=True, blank=True)
    from_address = models.CharField(max_length=42)
    recipient = models.CharField(max_length=42)
    amount_base = base_units()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    nonce = models.PositiveBigIntegerField(null=True, blank=True)
    gas = models.PositiveBigIntegerField(null=True, blank=True)
    mined_tx_hash = models.CharField(max_length=66, null=True, blank=True)
    fee_paid_base = base_units(null=True, blank=True)  # every attempt's
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    shortfall_base = base_units(
        null=True, blank=True, help_text="While WAITING: how much is missing."
    )
    shortfall_coin = models.CharField(
        max_length=10, blank=True, help_text="While WAITING: the coin that is short."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    held_until = models.DateTimeField(
        null=True, blank=True, help_text="While HELD: when it goes out by itself."
    )

    class Meta:
        db_table = "transfers"
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="HELD") | Q(held_until__isnull=False),
                name="transfers_held_until_when",
            ),
            models.UniqueConstraint(
                fields=["order", "purpose"],
                condition=Q(purpose__in=["RELEASE", "REFUND"]),
                name="transfers_once_per_order_purpose",
            ),
            models.UniqueConstraint(
                fields=["deposit"],
                condition=Q(purpose="RETURN"),
                name="transfers_one_return_per_deposit",
            ),
            models.UniqueConstraint(
                fields=["network", "from_address", "nonce"],
                condition=Q(nonce__isnull=False),
                name="transfers_one_per_nonce",
            ),
            models.CheckConstraint(
                condition=Q(amount_base__gt=0), name="transfers_amount_positive"
            ),
            models.CheckConstraint(
                condition=~Q(purpose__in=["RELEASE", "REFUND"]) | Q(order__isnull=False),
                name="transfers_order_purposes_have_order",
            ),
            models.CheckConstraint(
                condition=~Q(purpose="RETURN") | Q(deposit__isnull=False),
                name="transfers_return_has_deposit",
            ),
            models.CheckConstraint(
                condition=~Q(status="CONFIRMED") | Q(mined_tx_hash__regex=TX_HASH_RE),
                name="transfers_confirmed_has_hash",
            ),
            models.CheckConstraint(
                condition=Q(status="WAITING", shortfall_base__gt=0, shortfall_coin__gt="")
                | (~Q(status="WAITING") & Q(shortfall_base__isnull=True, shortfall_coin="")),
                name="transfers_waiting_has_shortfall",
            ),
        ]
        indexes = [
            models.Index(
                fields=["held_until"], name="idx_transfers_held", condition=Q(status="HELD")
            ),
            # Payouts waiting for their payer or for staff (the staff console counts them).
            models.Index(
                fields=["order"],
                name="idx_transfers_held_or_frozen",
                condition=Q(status__in=["HELD", "FROZEN"]),
            ),
            models.Index(
                fields=["created_at"],
                name="idx_transfers_unfinished",
                condition=Q(status__in=["PENDING", "WAITING", "SIGNED"]),
            ),
            # What staff must look at (the operator's alert counts them on every scrape).
            models.Index(
                fields=["created_at"],
                name="idx_transfers_failed",
                condition=Q(status="FAILED"),
            ),
            models.Index(fields=["-created_at"], name="idx_transfers_created"),
            models.Index(fields=["recipient"], name="idx_transfers_recipient"),
            models.Index(fields=["mined_tx_hash"], name="idx_transfers_mined_tx"),
        ]

    def __str__(self):
        return f"{self.purpose} {self.amount_base} {self.token} to {self.recipient} ({self.status})"


class SignedTransaction(models.Model):
    """The exact bytes signed for a transfer. Every replacement is kept; the mined one wins."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="signed")
    nonce = models.PositiveBigIntegerField()
    raw_tx = models.TextField()
    tx_hash = models.CharField(max_length=66, unique=True)
    max_fee_per_gas = base_units()
    max_priority_fee_per_gas = base_units()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "signed_transactions"
        ordering = ["created_at"]

    def __str__(self):
        return f"nonce {self.nonce}: {self.tx_hash}"


class NonceCursor(models.Model):
    """The next nonce to use per (network, sending address), handed out under a row lock."""

    network = models.CharField(max_length=20, choices=Network.choices)
    address = models.CharField(max_length=42)
    next_nonce = models.PositiveBigIntegerField()

    class Meta:
        db_table = "nonce_cursors"
        constraints = [
            models.UniqueConstraint(fields=["network", "address"], name="nonce_cursor_per_sender")
        ]

    def __str__(self):
        return f"{self.address} on {self.network}: next nonce {self.next_nonce}"


class ChainCursor(models.Model):
    """How far the deposit watcher has scanned a network, and the hashes of what it saw."""

    network = models.CharField(max_length=20, choices=Network.choices, primary_key=True)
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    updated_at = models.DateTimeField(auto_now=True)
    # What the node said at the watcher's last run (its lag, in the operator's metrics).
    head_number = models.PositiveBigIntegerField(null=True, blank=True)
    head_time = models.DateTimeField(
        null=True, blank=True, help_text="When the node's newest block was made."
    )
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "chain_cursors"

    def __str__(self):
        return f"{self.network} scanned to block {self.block_number}"


class ScannedBlock(models.Model):
    """A block the watcher scanned, kept so a reorg can rewind to one still on the chain."""

    network = models.CharField(max_length=20, choices=Network.choices)
    number = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=66)

    class Meta:
        db_table = "scanned_blocks"
        constraints = [
            models.UniqueConstraint(fields=["network", "number"], name="scanned_block_once")
        ]

    def __str__(self):
        return f"{self.network} block {self.number}"


class EscrowSnapshot(models.Model):
    """The last reconciliation of one token on one network, taken by beat for the staff
    console: what the escrow wallet holds on chain against what Kibo's records say."""

    network = models.CharField(max_length=20, choices=Network.choices)
    token = models.CharField(max_length=10)
    decimals = models.PositiveSmallIntegerField()
    block = models.PositiveBigIntegerField(help_text="The confirmed block it was read at.")
    on_chain = base_units()
    expected = base_units(help_text="What the records say it holds.")
    locked = base_units(help_text="Deposits not yet paid out or refunded.")
    ok = models.BooleanField(help_text="The balance matches the records.")
    taken_at = models.DateTimeField()

    class Meta:
        db_table = "escrow_snapshots"
        constraints = [
            models.UniqueConstraint(fields=["network", "token"], name="escrow_snapshot_once"),
        ]

    def __str__(self):
        return f"{self.token} on {self.network} at block {self.block}"

    @property
    def difference(self):
        return self.on_chain - self.expected


class SenderState(models.Model):
    """Whether the escrow wallet may sign and send (one row). Sending stops by itself when
    the database is not the one it last sent from: restored from a backup or failed over to
    a standby (a new PostgreSQL timeline), whose records may lack transfers the chain has.
    It resumes only when `escrow_recover` has matched the chain to the records and the
    books reconcile (escrow.sender, escrow.recovery)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    timeline = models.PositiveIntegerField(
        help_text="The PostgreSQL timeline the sender last sent on."
    )
    paused_because = models.TextField(blank=True, help_text="Empty while sending.")
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sender_state"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="sender_state_one_row")]

    def __str__(self):
        return f"paused: {self.paused_because}" if self.paused_because else "sending"
