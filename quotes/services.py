from datetime import datetime
from decimal import Decimal

from django.db import transaction

from quotes.models import Quote


@transaction.atomic
def quote_record(
    *, token: str, fiat: str, rate: Decimal, source: str, timestamp: datetime
) -> Quote:
    """Store a new rate for a pair and make it the active one, replacing the previous."""
    Quote.objects.select_for_update().filter(token=token, fiat=fiat, is_active=True).update(
        is_active=False
    )
    return Quote.objects.create(
        token=token, fiat=fiat, rate=rate, source=source, timestamp=timestamp, is_active=True
    )
