"""Production: real services from the environment, private S3 media, and refusal to start unsafe."""

from django.core.exceptions import ImproperlyConfigured

from kibo.env import BASE_DIR, env

from .base import *  # noqa: F403
from .base import INSECURE_SECRET_KEY, SECRET_KEY, private_s3_storage

if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
if SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a long random value in production.")
if not env("KIBO_ESCROW_PRIVATE_KEY", default=""):
    raise ImproperlyConfigured(
        "Set KIBO_ESCROW_PRIVATE_KEY: the escrow wallet cannot sign without it."
    )

DEBUG = False
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=3600)
SECURE_CONTENT_TYPE_NOSNIFF = True

STORAGES = {
    "default": private_s3_storage(
        bucket=env("KIBO_S3_BUCKET"),
        region=env("KIBO_S3_REGION", default=None),
        endpoint_url=env("KIBO_S3_ENDPOINT_URL", default=None),
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
