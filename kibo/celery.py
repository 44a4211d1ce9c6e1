"""The Celery application: Redis/Valkey broker, JSON only, configured from Django settings."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kibo.settings.local")

app = Celery("kibo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def refuse_to_start_without_the_escrow_key(**_):
    """A worker moves escrow funds, so it needs the key of the configured escrow wallet."""
    from escrow.services import escrow_key_problem

    problem = escrow_key_problem()
    if problem:
        raise SystemExit(f"The worker refuses to start: {problem}")
