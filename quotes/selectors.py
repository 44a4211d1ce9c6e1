from quotes.models import Quote


def get_current_rate(*, token: str, fiat: str) -> Quote | None:
    """The active quote for a pair, or None when there is none."""
    return Quote.objects.filter(token=token, fiat=fiat, is_active=True).first()
