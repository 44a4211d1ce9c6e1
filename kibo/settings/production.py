"""Production: real services from the environment, private S3 media, and refusal to start unsafe."""

from django.core.exceptions import ImproperlyConfigured
from eth_account import Account
from eth_utils import is_address, to_checksum_address

from kibo.env import BASE_DIR, env
from kibo.logs import logging_config
from kibo.well_known import DEVELOPMENT_ADDRESSES

from .base import *  # noqa: F403
from .base import (
    INSECURE_SECRET_KEY,
    KIBO_ESCROW_ADDRESS,
    KIBO_TRUSTED_PROXY_HOPS,
    LOG_LEVEL,
    LOG_QUIET,
    SECRET_KEY,
    private_s3_storage,
)

if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
if SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "Set DJANGO_SECRET_KEY to a long random value in production (50 characters or more, "
        "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
if not is_address(KIBO_ESCROW_ADDRESS):
    raise ImproperlyConfigured(
        "Set KIBO_ESCROW_ADDRESS to the escrow wallet's public address (0x and 40 hex digits): "
        "it is where payers send their money."
    )
if to_checksum_address(KIBO_ESCROW_ADDRESS) in DEVELOPMENT_ADDRESSES:
    raise ImproperlyConfigured(
        "KIBO_ESCROW_ADDRESS is a development account whose key everyone knows (the test "
        "mnemonic anvil and Hardhat use): anyone could take what payers send there."
    )
# Only the worker has a key; where one is given, it must not be a development key either.
_key = env("KIBO_ESCROW_PRIVATE_KEY", default="")
if _key:
    try:
        _signs_for = Account.from_key(_key).address
    except (ValueError, TypeError):
        _signs_for = None  # the worker refuses an invalid key, saying so
    if _signs_for in DEVELOPMENT_ADDRESSES:
        raise ImproperlyConfigured(
            "KIBO_ESCROW_PRIVATE_KEY is a development key everyone knows (the test mnemonic "
            "anvil and Hardhat use)."
        )
    del _signs_for
del _key
KIBO_ESCROW_ADDRESS = to_checksum_address(KIBO_ESCROW_ADDRESS)

DEBUG = False
LOGGING = logging_config(
    fmt=env("KIBO_LOG_FORMAT", default="json"), level=LOG_LEVEL, quiet=LOG_QUIET
)
KIBO_STAFF_TWO_FACTOR = env.bool("KIBO_STAFF_TWO_FACTOR", default=True)
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = False
# X-Forwarded-Proto says a request came over TLS only when a trusted proxy (which sets it,
# replacing what the client wrote) is in front: without one, any client could write it.
if KIBO_TRUSTED_PROXY_HOPS > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Browsers use HTTPS only, for a year, subdomains included; preloading (into the browsers'
# own lists, hard to undo) is the operator's choice.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:  # off by choice, not by oversight: `check --deploy` stays quiet
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True

STORAGES = {
    "default": private_s3_storage(
        bucket=env("KIBO_S3_BUCKET"),
        region=env("KIBO_S3_REGION", default=None),
        endpoint_url=env("KIBO_S3_ENDPOINT_URL", default=None),
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
