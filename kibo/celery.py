"""The Celery application: Redis/Valkey broker, JSON only, configured from Django settings.
Each app's tasks module is found by autodiscovery.

Every task run is counted and timed (kibo.telemetry) by the signals below. A worker started
with KIBO_WORKER_METRICS_PORT serves those figures on that port for Prometheus, added up
across its pool's processes (PROMETHEUS_MULTIPROC_DIR, emptied when the worker starts).
The port is internal: bind it where only Prometheus reaches it (README: Operations).
"""

import contextvars
import logging.config
import os
import time

from celery import Celery, signals
from django.conf import settings
from prometheus_client import start_http_server

from kibo import logs
from kibo.telemetry import (
    TASK_RUNS,
    TASK_SECONDS,
    counts_forget,
    counts_registry,
    counts_start,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kibo.settings.local")

app = Celery("kibo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# task id -> when it started and its log context's token, in the process running it
_running: dict[str, tuple[float, contextvars.Token]] = {}


@signals.setup_logging.connect
def _log_as_django_does(**_):
    """Workers and beat log through Django's LOGGING (kibo.logs), never Celery's own setup:
    KIBO_LOG_LEVEL and KIBO_LOG_FORMAT decide, not `--loglevel`."""
    logging.config.dictConfig(settings.LOGGING)


@signals.worker_init.connect
def _serve_metrics(**_):
    port = os.environ.get("KIBO_WORKER_METRICS_PORT")
    if not port:
        return
    counts_start()
    host = os.environ.get("KIBO_WORKER_METRICS_HOST", "127.0.0.1")
    start_http_server(int(port), addr=host, registry=counts_registry())


@signals.worker_process_shutdown.connect
def _forget_process(pid=None, **_):
    counts_forget(pid or os.getpid())


@signals.before_task_publish.connect
def _carry_log_context(headers=None, **_):
    """A task enqueued while serving a request (or running a task) logs under its id."""
    carried = {name: value for name, value in logs.current().items() if name != "task_id"}
    if headers is not None and carried:
        headers["kibo_log"] = carried


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, kwargs=None, **_):
    carried = getattr(task.request, "kibo_log", None) or {}
    named = {name: kwargs[name] for name in ("order_id", "transfer_id") if name in (kwargs or {})}
    token = logs.bind(**{**carried, **named}, task_id=task_id)
    _running[task_id] = (time.perf_counter(), token)


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **_):
    if (running := _running.pop(task_id, None)) is not None:
        started, token = running
        logs.unbind(token)
        TASK_SECONDS.labels(task.name).observe(time.perf_counter() - started)
    outcome = {"SUCCESS": "success", "RETRY": "retry"}.get(state or "", "failure")
    delivered = task.request.delivery_info or {}
    queue = delivered.get("routing_key") or ("eager" if task.request.is_eager else "unknown")
    TASK_RUNS.labels(task.name, queue, outcome).inc()
