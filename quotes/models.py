import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from kibo.models import Country


class Token(models.TextChoices):
    USDT = "USDT"
    USDC = "USDC"
    ETH = "ETH"


class Fiat(models.TextChoices):
    BOB = "BOB", "Boliviano"
    MXN = "MXN", "Mexican peso"
    ARS = "ARS", "Argentine peso"


FIAT_COUNTRY: dict[str, str] = {
    Fiat.BOB: Country.BOLIVIA,
    Fiat.MXN: Country.MEXICO,
    Fiat.ARS: Country.ARGENTINA,
}
COUNTRY_FIAT: dict[str, str] = {country: fiat for fiat, country in FIAT_COUNTRY.items()}


class Quote(models.Model):
    """How many units of `fiat` one `token` buys, from `source`, at `timestamp`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.CharField(max_length=10, choices=Token.choices)
    fiat = models.CharField(max_length=3, choices=Fiat.choices)
    rate = models.DecimalField(max_digits=18, decimal_places=8)
    source = models.CharField(max_length=50)
    timestamp = models.DateTimeField()
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = "quotes"
        constraints = [
            models.CheckConstraint(condition=Q(rate__gt=0), name="quotes_rate_positive"),
            models.CheckConstraint(condition=Q(token__in=Token.values), name="quotes_token_valid"),
            models.CheckConstraint(condition=Q(fiat__in=Fiat.values), name="quotes_fiat_valid"),
            models.UniqueConstraint(
                fields=["token", "fiat"],
                condition=Q(is_active=True),
                name="quotes_one_active_per_pair",
            ),
        ]
        indexes = [
            models.Index(fields=["token", "fiat", "-timestamp"], name="idx_quotes_pair_time"),
        ]

    def __str__(self):
        return f"1 {self.token} = {self.rate} {self.fiat} ({self.source})"

    @property
    def age_seconds(self) -> int:
        return max(0, int((timezone.now() - self.timestamp).total_seconds()))


class LocalRate(models.Model):
    """A rate staff set by hand: the `local` source, used where the configured order says."""

    token = models.CharField(max_length=10, choices=Token.choices)
    fiat = models.CharField(max_length=3, choices=Fiat.choices)
    rate = models.DecimalField(max_digits=18, decimal_places=8)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "local_rates"
        constraints = [
            models.UniqueConstraint(fields=["token", "fiat"], name="local_rate_per_pair"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="local_rate_positive"),
        ]

    def __str__(self):
        return f"1 {self.token} = {self.rate} {self.fiat} (set by staff)"
