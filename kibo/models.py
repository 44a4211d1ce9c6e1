import re
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from eth_utils import is_address, to_checksum_address

WALLET_RE = r"^0x[0-9a-fA-F]{40}$"


class Country(models.TextChoices):
    BOLIVIA = "BO", _("Bolivia")
    MEXICO = "MX", _("Mexico")
    ARGENTINA = "AR", _("Argentina")


# Where each country's people live by the clock: the pages show their times in it, and an
# ally's working hours are read in it.
COUNTRY_TIMEZONES = {
    Country.BOLIVIA: ZoneInfo("America/La_Paz"),
    Country.MEXICO: ZoneInfo("America/Mexico_City"),
    Country.ARGENTINA: ZoneInfo("America/Argentina/Buenos_Aires"),
}


def checksum_wallet(value: str) -> str:
    """EIP-55 form of a wallet address; raises ValidationError for anything else."""
    if not isinstance(value, str) or not re.fullmatch(WALLET_RE, value) or not is_address(value):
        raise ValidationError(f"{value!r} is not an Ethereum address.")
    return to_checksum_address(value)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, wallet_address):
        return self.get(wallet_address=checksum_wallet(wallet_address))

    def create_user(self, wallet_address, password=None, **fields):
        user = self.model(wallet_address=checksum_wallet(wallet_address), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, wallet_address, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True, role=User.Role.ADMIN, verified=True)
        return self.create_user(wallet_address, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A wallet identity. Staff also have a username and password for the admin."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ALLY = "ally", "Ally"
        ADMIN = "admin", "Admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet_address = models.CharField(max_length=42, unique=True)
    username = models.CharField(max_length=150, unique=True, null=True, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.USER)
    country = models.CharField(max_length=2, choices=Country.choices, null=True, blank=True)
    verified = models.BooleanField(
        default=False, help_text="An ally may take orders once verified."
    )
    reputation = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("5.00"))
    successful_orders = models.PositiveIntegerField(default=0)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_active = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "wallet_address"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        db_table = "users"
        constraints = [
            models.CheckConstraint(
                condition=Q(wallet_address__regex=WALLET_RE), name="users_wallet_address_format"
            ),
            models.CheckConstraint(
                condition=Q(role__in=["user", "ally", "admin"]), name="users_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(country__isnull=True) | Q(country__in=["BO", "MX", "AR"]),
                name="users_country_valid",
            ),
            models.CheckConstraint(
                condition=Q(reputation__gte=0) & Q(reputation__lte=5),
                name="users_reputation_range",
            ),
            models.CheckConstraint(
                condition=~Q(role="ally") | Q(country__isnull=False),
                name="users_ally_has_country",
            ),
        ]
        indexes = [
            models.Index(fields=["role"], name="idx_users_role"),
            models.Index(
                fields=["country"],
                name="idx_users_verified_allies",
                condition=Q(role="ally", verified=True),
            ),
        ]

    def __str__(self):
        return self.username or self.wallet_address

    def clean(self):
        self.wallet_address = checksum_wallet(self.wallet_address)

    @property
    def is_ally(self) -> bool:
        return self.role == self.Role.ALLY


class SystemConfig(models.Model):
    """A value of a SYSTEM_CONFIG option (declared, typed and read in kibo.config)."""

    key = models.CharField(max_length=100, primary_key=True)
    value = models.TextField()
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "system_config"
        verbose_name = "system config"
        verbose_name_plural = "system config"

    def __str__(self):
        return f"{self.key} = {self.value}"


class BlockedWallet(models.Model):
    """A wallet staff blocked: it cannot sign in, pay a QR, apply as an ally or take orders,
    and what it sends to escrow goes back. Unblocking keeps the row, for the record."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet_address = models.CharField(max_length=42)
    reason = models.TextField()
    blocked_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    unblocked_at = models.DateTimeField(null=True, blank=True)
    unblocked_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        db_table = "blocked_wallets"
        constraints = [
            # One block in force per wallet; it is also the index every check reads.
            models.UniqueConstraint(
                fields=["wallet_address"],
                condition=Q(unblocked_at__isnull=True),
                name="blocked_wallets_one_in_force",
            ),
        ]

    def __str__(self):
        return self.wallet_address


class Backup(models.Model):
    """A backup pgBackRest holds in its repository, as beat last read it
    (`kibo.backups.backups_record`): what the operator's metrics and the restore drill
    look at. The repository is the truth; this is what Kibo saw of it."""

    label = models.CharField(max_length=64, primary_key=True)  # pgBackRest's
    kind = models.CharField(max_length=4)  # full, diff or incr
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    database_bytes = models.PositiveBigIntegerField()
    repository_bytes = models.PositiveBigIntegerField()
    wal_start = models.CharField(max_length=24, blank=True)
    wal_stop = models.CharField(max_length=24, blank=True)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "backups"
        ordering = ["-finished_at"]

    def __str__(self):
        return f"{self.kind} backup {self.label}"


class TableSize(models.Model):
    """How big one table and its indexes were on one day (beat, weekly): the growth the
    operator's dashboard draws (kibo.maintenance)."""

    day = models.DateField()
    table = models.CharField(max_length=63)
    table_bytes = models.PositiveBigIntegerField(help_text="Rows and TOAST, all partitions.")
    index_bytes = models.PositiveBigIntegerField()
    rows = models.PositiveBigIntegerField(help_text="PostgreSQL's estimate (reltuples).")

    class Meta:
        db_table = "table_sizes"
        constraints = [
            models.UniqueConstraint(fields=["day", "table"], name="table_sizes_once_a_day"),
        ]

    def __str__(self):
        return f"{self.table} on {self.day}"


class PushDevice(models.Model):
    """A browser that Kibo may wake with a Web Push message (its push subscription), even
    with Kibo closed. The endpoint is the push service's address for it; p256dh and auth
    are the keys a message is encrypted to (RFC 8291), so only that browser can read it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="push_devices")
    endpoint = models.URLField(max_length=1024, unique=True)
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=50)
    language = models.CharField(max_length=8, help_text="The page's language when subscribed.")
    label = models.CharField(max_length=80, help_text="The browser and system, to tell apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "push_devices"
        indexes = [models.Index(fields=["user", "created_at"], name="idx_push_devices_user")]

    def __str__(self):
        return f"{self.label} of {self.user}"


class TelegramChat(models.Model):
    """A person's chat with Kibo's Telegram bot, linked from the board by a one-time link
    (kibo.telegram): where the same notices as Web Push go, when the bot is configured."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="telegram_chat")
    chat_id = models.BigIntegerField(unique=True)
    language = models.CharField(max_length=8)
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "telegram_chats"

    def __str__(self):
        return f"Telegram chat of {self.user}"
