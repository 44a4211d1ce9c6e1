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
