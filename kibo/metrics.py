"""What Prometheus scrapes: HTTP requests per route (count by status, latency histogram).

Under gunicorn each worker process counts its own requests; with PROMETHEUS_MULTIPROC_DIR
set (deploy/gunicorn.conf.py sets it, empties it on start and forgets a worker's files when
it exits), prometheus-client keeps those counts in files there and `/metrics` adds up every
worker's. Without it (one process: `make run`, the tests) the counts stay in memory.

`/metrics` is not public: it answers only a request that carries
`Authorization: Bearer <KIBO_METRICS_TOKEN>`, and is not there at all (404) while no token
is configured.
"""

import hmac
import os
import time

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "kibo_http_requests_total",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "kibo_http_request_duration_seconds",
    "Time to answer an HTTP request, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _route(request) -> str:
    """The route's name (its pattern's name, never the path: ids would make a series each)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class MetricsMiddleware:
    """Counts and times every request by route."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route(request)
        LATENCY.labels(route).observe(time.perf_counter() - started)
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        return response


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # every worker's files, added up
        return registry
    return REGISTRY


@require_GET
def metrics(request):
    """The figures in Prometheus' text format, for a scraper with the token."""
    token = settings.KIBO_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Http404()
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
