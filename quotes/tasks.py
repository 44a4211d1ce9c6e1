from celery import shared_task

from quotes.services import quotes_refresh


@shared_task(acks_late=True, ignore_result=True)
def refresh_quotes() -> int:
    """Beat asks every few seconds; only pairs older than the configured interval refresh."""
    return len(quotes_refresh())
