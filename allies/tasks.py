from celery import shared_task

from allies.presence import presence_sample


@shared_task(acks_late=True, ignore_result=True)
def sample_presence() -> int:
    """Beat, every few minutes: allies online per country, for the console's day."""
    return len(presence_sample())
