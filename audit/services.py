import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from audit.models import Log


def log_action(
    *,
    action: str,
    order=None,
    order_id=None,
    actor_wallet: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Log:
    """Append an audit entry about an order (`order`, or only its `order_id`) or about none;
    call it inside the transaction whose change it records."""
    return Log.objects.create(
        order_id=order.pk if order is not None else order_id,
        action=action,
        actor_wallet=actor_wallet,
        metadata=metadata or {},
    )


def log_actions(entries: list[dict[str, Any]]) -> None:
    """Append several audit entries in one statement (each a dict of log_action's arguments);
    call it inside the transaction whose changes they record."""
    if not entries:
        return
    columns = [
        [getattr(entry.get("order"), "pk", None) for entry in entries],
        [entry["action"] for entry in entries],
        [entry.get("actor_wallet") for entry in entries],
        [json.dumps(entry.get("metadata") or {}, cls=DjangoJSONEncoder) for entry in entries],
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO logs (id, order_id, action, actor_wallet, metadata, created_at)
            SELECT gen_random_uuid(), e.order_id, e.action, e.actor_wallet, e.metadata::jsonb,
                   clock_timestamp()
            FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[])
                 AS e (order_id, action, actor_wallet, metadata)
            """,
            columns,
        )
