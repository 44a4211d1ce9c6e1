"""Staff accounts locked out of password sign-in after repeated failures.

Failed sign-ins are counted per account (its username and its wallet address are one
account) over 15 minutes; at KIBO_ADMIN_LOGIN_FAILURES_PER_ACCOUNT the account is locked
for KIBO_ADMIN_LOCKOUT_SECONDS, even with the right password, unless another staff member
lifts the lock-out first. Both are audited. A name that is no account is counted the same
way, so the answers never say which names exist.
"""

import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Q

from audit.models import Action
from audit.services import log_action
from kibo.cache import forget_hits, hit
from kibo.models import User, checksum_wallet

FAILURE_WINDOW_SECONDS = 15 * 60


def _account(user_id) -> str:
    return f"user:{user_id}"


def account_key(username: str) -> str:
    """One key per staff account, whichever of its names is typed."""
    try:
        wallet = checksum_wallet(username)
    except ValidationError:
        wallet = None
    staff = User.objects.filter(Q(username=username) | Q(wallet_address=wallet), is_staff=True)
    user_id = staff.values_list("pk", flat=True).first()
    return _account(user_id) if user_id else f"name:{username.strip().lower()[:150]}"


def _lock(key: str) -> str:
    return f"admin-lockout:{key}"


def locked_for(username: str) -> int | None:
    """Seconds the account stays locked out, or None."""
    until = cache.get(_lock(account_key(username)))
    if until is None or until <= time.time():
        return None
    return int(until - time.time()) + 1


def failed_sign_in(username: str, *, client: str) -> None:
    """Count a failed password sign-in; lock the account out at the limit."""
    key = account_key(username)
    limit = settings.KIBO_ADMIN_LOGIN_FAILURES_PER_ACCOUNT
    if hit(f"admin-login-account:{key}", limit=limit - 1, window_seconds=FAILURE_WINDOW_SECONDS):
        seconds = settings.KIBO_ADMIN_LOCKOUT_SECONDS
        cache.set(_lock(key), time.time() + seconds, timeout=seconds)
        log_action(
            action=Action.STAFF_LOCKED_OUT,
            metadata={"account": key, "username": username[:150], "client": client},
        )


def lockout_lift(*, user: User, staff: User) -> bool:
    """Staff lift another account's lock-out (audited); False if it was not locked."""
    key = _account(user.pk)
    if cache.get(_lock(key)) is None:
        return False
    cache.delete(_lock(key))
    forget_hits(f"admin-login-account:{key}", window_seconds=FAILURE_WINDOW_SECONDS)
    log_action(
        action=Action.STAFF_LOCKOUT_LIFTED,
        actor_wallet=staff.wallet_address,
        metadata={"account": key, "user": str(user), "staff": str(staff)},
    )
    return True
