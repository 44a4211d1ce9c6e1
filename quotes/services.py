import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import log_action
from kibo import config
from kibo.telemetry import QUOTE_REFRESHES
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
    # "USDT" is a coin, not a password, whatever bandit's B106 guesses.
    quote = get_current_rate(token="USDT", fiat=fiat)  # nosec B106
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


def _second_opinion(
    token: str, fiat: str, sources: tuple[str, ...], *, first: str
) -> tuple[Decimal, str] | None:
    """What the sources after `first` say, if any of them answers."""
    later = sources[sources.index(first) + 1 :]
    try:
        return _fetch(token, fiat, later) if later else None
    except RateUnavailable:
        return None


def _refuse(
    token: str,
    fiat: str,
    rate: Decimal,
    source: str,
    *,
    sources: tuple[str, ...],
    against: dict,
    gap: Decimal,
) -> None:
    """Log a refused rate for staff (QUOTE_REJECTED): what it was compared with, and how
    far apart they were; and count it."""
    _count(token, fiat, source, sources, "refused")
    log_action(
        action=Action.QUOTE_REJECTED,
        metadata={
            "pair": f"{token}/{fiat}",
            "source": source,
            "rate": str(rate),
            **against,
            "jump_percent": str(gap.quantize(Decimal("0.01"))),
        },
    )
    logger.warning(
        "refused %s/%s = %s from %s: %.2f%% away from %s", token, fiat, rate, source, gap, against
    )


def _count(token: str, fiat: str, source: str, sources: tuple[str, ...], outcome: str) -> None:
    """kibo_quote_refreshes_total; a fallback is any source but the first configured."""
    fallback = "true" if source and source != sources[0] else "false"
    QUOTE_REFRESHES.labels(f"{token}/{fiat}", source, fallback, outcome).inc()


def _percent_apart(rate: Decimal, reference: Decimal) -> Decimal:
    return abs(rate - reference) / reference * 100


def quotes_refresh(*, force: bool = False) -> list[Quote]:
    """Refresh every pair whose quote is older than QUOTE_UPDATE_INTERVAL_SECONDS.

    Sources are tried in the order SYSTEM_CONFIG's QUOTE_SOURCES gives. A rate is refused
    and logged for staff when it moved more than QUOTE_MAX_JUMP_PERCENT from the active one,
    or lies more than QUOTE_CROSS_CHECK_PERCENT from what the next source that answers says
    (so a few fake advertisements on one market cannot move Kibo's price); the pair then
    keeps its old quote, which the staleness guard retires in time. Running it again is
    harmless. Returns the quotes it stored.
    """
    sources = config.QUOTE_SOURCES.get()
    interval = timedelta(seconds=config.QUOTE_UPDATE_INTERVAL_SECONDS.get())
    max_jump = config.QUOTE_MAX_JUMP_PERCENT.get()
    max_gap = config.QUOTE_CROSS_CHECK_PERCENT.get()
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
            _count(token, fiat, "", sources, "unavailable")
            continue
        if current is not None:
            jump = _percent_apart(rate, current.rate)
            if jump > max_jump:
                against = {"previous": str(current.rate), "max_percent": str(max_jump)}
                _refuse(token, fiat, rate, source, sources=sources, against=against, gap=jump)
                continue
        second = _second_opinion(token, fiat, sources, first=source) if max_gap else None
        if second is not None:
            gap = _percent_apart(rate, second[0])
            if gap > max_gap:
                against = {
                    "second_source": second[1],
                    "second_rate": str(second[0]),
                    "max_percent": str(max_gap),
                }
                _refuse(token, fiat, rate, source, sources=sources, against=against, gap=gap)
                continue
        stored.append(quote_record(token=token, fiat=fiat, rate=rate, source=source, timestamp=now))
        _count(token, fiat, source, sources, "stored")
    return stored
