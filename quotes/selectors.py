from datetime import datetime

from quotes.models import Quote


def get_current_rate(*, token: str, fiat: str) -> Quote | None:
    """The active quote for a pair, or None when there is none."""
    return Quote.objects.filter(token=token, fiat=fiat, is_active=True).first()


def newest_quote_times() -> dict[tuple[str, str], datetime]:
    """(token, fiat) -> when its active quote was fetched (quotes_one_active_per_pair's
    partial index holds exactly the active ones)."""
    active = Quote.objects.filter(is_active=True).order_by()
    return {
        (token, fiat): at for token, fiat, at in active.values_list("token", "fiat", "timestamp")
    }
