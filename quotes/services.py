import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import log_action
from kibo import config
from quotes.models import Fiat, Quote
from quotes.providers import RateUnavailable, provider
from quotes.selectors import get_current_rate

logger = logging.getLogger(__name__)


@transaction.atomic
def quote_record(
    *, token: str, fiat: str, rate: Decimal, source: str, timestamp: datetime
) -> Quote:
    """Store a new rate for a pair and make it the active one, replacing the previous."""
    with connection.cursor() as cursor:  # one writer per pair at a time
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"quote:{token}:{fiat}"])
    Quote.objects.filter(token=token, fiat=fiat, is_active=True).update(is_active=False)
    return Quote.objects.create(
        token=token, fiat=fiat, rate=rate, source=source, timestamp=timestamp, is_active=True
    )


RATE_QUANTUM = Decimal("0.00000001")  # rates are stored as NUMERIC(18,8)
PAIRS = [(token, fiat) for token in ("USDT", "USDC", "ETH") for fiat in Fiat.values]


def _usd_in_fiat(fiat: str) -> Decimal:
    """What a US dollar buys in `fiat`: the market's active USDT rate."""
    quote = get_current_rate(token="USDT", fiat=fiat)
    if quote is None:
        raise RateUnavailable(f"no USDT/{fiat} rate to convert US dollars with")
    return quote.rate


def _fetch(token: str, fiat: str, sources: tuple[str, ...]) -> tuple[Decimal, str]:
    """The first rate the sources give, in the configured order."""
    failures = []
    for name in sources:
        try:
            rate = provider(name, usd_in_fiat=_usd_in_fiat).rate(token, fiat)
            return rate.quantize(RATE_QUANTUM), name
        except RateUnavailable as unavailable:
            failures.append(str(unavailable))
    raise RateUnavailable("; ".join(failures) or "no rate source is configured")


def quotes_refresh(*, force: bool = False) -> list[Quote]:
    """Refresh every pair whose quote is older than QUOTE_UPDATE_INTERVAL_SECONDS.

    Sources are tried in the order SYSTEM_CONFIG's QUOTE_SOURCES gives. A rate that moved
    more than QUOTE_MAX_JUMP_PERCENT from the active one is refused and logged for staff;
    the pair then keeps its old quote, which the staleness guard retires in time. Running it
    again is harmless. Returns the quotes it stored.
    """
    sources = config.QUOTE_SOURCES.get()
    interval = timedelta(seconds=config.QUOTE_UPDATE_INTERVAL_SECONDS.get())
    max_jump = config.QUOTE_MAX_JUMP_PERCENT.get()
    stored = []
    for token, fiat in PAIRS:  # USDT first: CoinGecko converts through it
        now = timezone.now()
        current = get_current_rate(token=token, fiat=fiat)
        if current is not None and not force and now - current.timestamp < interval:
            continue
        try:
            rate, source = _fetch(token, fiat, sources)
        except RateUnavailable as unavailable:
            logger.warning("no rate for %s/%s: %s", token, fiat, unavailable)
            continue
        if current is not None:
            jump = abs(rate - current.rate) / current.rate * 100
            if jump > max_jump:
                log_action(
                    action=Action.QUOTE_REJECTED,
                    metadata={
                        "pair": f"{token}/{fiat}",
                        "source": source,
                        "rate": str(rate),
                        "previous": str(current.rate),
                        "jump_percent": str(jump.quantize(Decimal("0.01"))),
                        "max_percent": str(max_jump),
                    },
                )
                logger.warning(
                    "refused %s/%s = %s from %s: %.2f%% away from %s",
                    token,
                    fiat,
                    rate,
                    source,
                    jump,
                    current.rate,
                )
                continue
        stored.append(quote_record(token=token, fiat=fiat, rate=rate, source=source, timestamp=now))
    return stored
