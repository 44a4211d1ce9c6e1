from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from escrow.chain import ChainUnavailable, head_block
from escrow.networks import configured_networks
from kibo.celery import app as celery_app
from quotes.models import Quote


@require_GET
def landing(request):
    return render(request, "kibo/landing.html")


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def _chain_heads() -> dict[str, int | None]:
    """Each enabled network's latest block, or None where its node does not answer."""
    heads = {}
    for spec in configured_networks():
        try:
            heads[spec.name] = head_block(spec.name)
        except ChainUnavailable:
            heads[spec.name] = None
    return heads


@require_GET
def healthz(request):
    """For operators and load balancers: 200 when the database and broker answer. Chain nodes
    and quote ages are reported too; a slow node must not take the web tier out."""
    database = _database_ok()
    now = timezone.now()
    quotes = (
        {
            f"{q.token}/{q.fiat}": {
                "rate": str(q.rate),
                "source": q.source,
                "age_seconds": int((now - q.timestamp).total_seconds()),
            }
            for q in Quote.objects.filter(is_active=True).order_by("token", "fiat")
        }
        if database
        else {}
    )
    checks = {"database": database, "broker": _broker_ok()}
    healthy = all(checks.values())
    return JsonResponse(
        {
            "status": "ok" if healthy else "failing",
            **checks,
            "chain": _chain_heads(),
            "quotes": quotes,
        },
        status=200 if healthy else 503,
    )
