import uuid

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kibo.errors import Conflict, DomainError
from kibo.models import Country, SystemConfig, User, checksum_wallet
from kibo.selectors import CONFIG_VERSION_KEY
from kibo.siwe import SiweRejected


@transaction.atomic
def config_set(*, key: str, value: str, description: str | None = None) -> SystemConfig:
    """Create or change a SYSTEM_CONFIG key; every process sees it once this commits."""
    config, _ = SystemConfig.objects.select_for_update().get_or_create(key=key)
    config.value = value
    if description is not None:
        config.description = description
    config.save()
    # A new version now, so this transaction reads its own change; and again on commit, so
    # what other processes cached meanwhile (the old value) is never read again.
    _new_config_version()
    transaction.on_commit(_new_config_version)
    return config


def _new_config_version() -> None:
    cache.set(CONFIG_VERSION_KEY, uuid.uuid4().hex, timeout=None)


def user_sign_in(*, address: str) -> User:
    """A wallet proved it is its owner's: its user, created on first sign-in, is active now.

    Staff keep their password sign-in for the admin: a wallet signature alone never opens
    a staff session.
    """
    user, _created = User.objects.get_or_create(wallet_address=checksum_wallet(address))
    if user.is_staff:
        raise SiweRejected(_("Staff sign in to the admin with their password."))
    if not user.is_active:
        raise SiweRejected(_("This account is disabled."))
    user.last_active = timezone.now()
    user.save(update_fields=["last_active"])
    return user


@transaction.atomic
def user_country_set(*, user: User, country: str) -> User:
    """The country whose QRs the user pays; it can change until the first order."""
    if country not in Country.values:
        raise DomainError(_("Choose Bolivia, Mexico or Argentina."))
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.country != country and user.orders.exists():
        raise Conflict(_("Your country can't change after your first order."))
    user.country = country
    user.save(update_fields=["country"])
    return user
