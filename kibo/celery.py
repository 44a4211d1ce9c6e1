"""The Celery application: Redis/Valkey broker, JSON only, configured from Django settings.
Each app's tasks module is found by autodiscovery."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kibo.settings.local")

app = Celery("kibo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
