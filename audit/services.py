from typing import Any

from audit.models import Log


def log_action(
    *,
    action: str,
    order=None,
    actor_wallet: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Log:
    """Append an audit entry; call it inside the transaction whose change it records."""
    return Log.objects.create(
        order=order, action=action, actor_wallet=actor_wallet, metadata=metadata or {}
    )


def log_actions(entries: list[dict[str, Any]]) -> list[Log]:
    """Append several audit entries at once (each a dict of log_action's arguments)."""
    return Log.objects.bulk_create(
        Log(
            order=entry.get("order"),
            action=entry["action"],
            actor_wallet=entry.get("actor_wallet"),
            metadata=entry.get("metadata") or {},
        )
        for entry in entries
    )
