from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import Action
from audit.services import log_action
from kibo import webpush
from kibo.cache import renew_generations
from kibo.config import CONFIG_GENERATION, option_named
from kibo.db import in_callers_transaction
from kibo.errors import Conflict, DomainError, NotFound, WalletBlocked
from kibo.locks import lock_config, lock_user
from kibo.models import PushDevice, SystemConfig, User, checksum_wallet
from kibo.selectors import is_wallet_blocked
from kibo.siwe import SiweRejected


@transaction.atomic
def config_set(*, key: str, value: str, staff: User | None = None) -> SystemConfig:
    """Change a SYSTEM_CONFIG value, audited (CONFIG_CHANGED: the key, the old and new
    values, and the staff member, if a person made it). The key must be a declared option
    (kibo.config), and the value one it takes (InvalidConfigValue says why not; nothing is
    saved). Every process sees it once this commits."""
    option = option_named(key)
    value = value.strip()
    option.read(value)
    config = lock_config(key)
    old = config.value
    config.value, config.description = value, option.description
    config.save()
    renew_generations(CONFIG_GENERATION)
    if old != value:
        log_action(
            action=Action.CONFIG_CHANGED,
            actor_wallet=staff.wallet_address if staff else None,
            metadata={
                "key": key,
                "old": old,
                "new": value,
                **({"staff": str(staff)} if staff else {}),
            },
        )
    return config


def user_sign_in(*, address: str) -> User:
    """A wallet proved it is its owner's: its user, created on first sign-in, is active now.

    Staff keep their password sign-in for the admin: a wallet signature alone never opens
    a staff session.
    """
    wallet = checksum_wallet(address)
    wallet_refuse_if_blocked(wallet=wallet, attempt="sign in")
    user, _created = User.objects.get_or_create(wallet_address=wallet)
    if user.is_staff:
        raise SiweRejected(_("Staff sign in to the admin with their password."))
    if not user.is_active:
        raise SiweRejected(_("This account is disabled."))
    user.last_active = timezone.now()
    user.save(update_fields=["last_active"])
    return user


# --- the blacklist (blocking a wallet, which cancels its orders, is orders.blocking) -------


@in_callers_transaction
def wallet_refuse_if_still_blocked(*, wallet: str) -> None:
    """Inside a transaction that has locked the wallet's user row: raise WalletBlocked if a
    block committed after wallet_refuse_if_blocked looked. (Such an attempt, a moment's race,
    is refused with its transaction, and so not recorded.)"""
    if is_wallet_blocked(wallet=wallet):
        raise WalletBlocked()


def wallet_refuse_if_blocked(*, wallet: str, attempt: str) -> None:
    """Raise WalletBlocked for a blocked wallet, recording the attempt. Call it before the
    transaction of what is attempted: the record must outlive that transaction's rollback."""
    if is_wallet_blocked(wallet=wallet):
        log_action(
            action=Action.BLOCKED_ATTEMPT,
            actor_wallet=wallet,
            metadata={"wallet": wallet, "attempt": attempt},
        )
        raise WalletBlocked()


# --- devices that get notices (kibo.notices) ------------------------------------------------

DEVICES_PER_USER = 10


def _device_label(user_agent: str) -> str:
    """The browser and system ("Chrome · Android") from the User-Agent, to tell devices
    apart in the person's list."""
    browsers = (
        ("Edg/", "Edge"),
        ("SamsungBrowser", "Samsung Internet"),
        ("Firefox", "Firefox"),
        ("Chrome", "Chrome"),
        ("Safari", "Safari"),
    )
    systems = (
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "Mac"),
        ("Linux", "Linux"),
    )
    browser = next((name for mark, name in browsers if mark in user_agent), _("A browser"))
    system = next((name for mark, name in systems if mark in user_agent), None)
    return f"{browser} · {system}" if system else browser


@transaction.atomic
def push_device_subscribe(
    *, user: User, subscription: object, language: str, user_agent: str
) -> PushDevice:
    """The browser's push subscription (its PushSubscription.toJSON()) becomes one of the
    user's devices; the same browser again updates it, and a browser that another wallet
    subscribed from before is now this user's."""
    if not webpush.public_key():
        raise DomainError(_("Notifications are not available on this Kibo."))
    refused = DomainError(_("This browser's subscription can't be used. Try again."))
    if not isinstance(subscription, dict) or not isinstance(subscription.get("keys"), dict):
        raise refused
    endpoint, keys = subscription.get("endpoint"), subscription["keys"]
    if not isinstance(endpoint, str) or len(endpoint) > 1024:
        raise refused
    try:
        p256dh, auth = webpush.key_bytes(keys.get("p256dh")), webpush.key_bytes(keys.get("auth"))
        webpush.public_point(p256dh)
    except ValueError:
        raise refused from None
    if len(auth) != 16:
        raise refused
    if not webpush.endpoint_allowed(endpoint):
        raise DomainError(_("This browser's push service is not one Kibo sends to."))
    lock_user(user.pk)
    device = PushDevice.objects.filter(endpoint=endpoint).first()
    if device is None and user.push_devices.count() >= DEVICES_PER_USER:
        raise Conflict(
            _("You have %(n)d devices already; remove one first.") % {"n": DEVICES_PER_USER}
        )
    device = device or PushDevice(endpoint=endpoint)
    device.user = user
    device.p256dh, device.auth = webpush.b64url(p256dh), webpush.b64url(auth)
    device.language = language
    device.label = _device_label(user_agent or "")[:80]
    device.save()
    return device


def push_device_remove(*, user: User, device_id) -> None:
    """One of the user's devices stops getting notices (404 for anyone else's)."""
    if not PushDevice.objects.filter(pk=device_id, user=user).delete()[0]:
        raise NotFound(_("No such device."))


def push_devices_forget(*, user: User, device_ids) -> None:
    """The user signed out of the browser these devices are: they stop getting notices."""
    PushDevice.objects.filter(user=user, pk__in=device_ids).delete()
