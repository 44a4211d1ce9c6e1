"""Tests: devtools.pytest_plugin points DATABASE_URL and REDIS_URL at embedded servers when
unset; the devtools app is installed (the crash tests' failpoints, the demo data)."""

from kibo.env import BASE_DIR, env

from .base import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = BASE_DIR / ".kibo" / "test-media"
CACHES["default"]["KEY_PREFIX"] = "kibo-test"  # noqa: F405

KIBO_ENABLED_NETWORKS = env.list("KIBO_ENABLED_NETWORKS", default=["local"])

# No test reaches the internet: rate providers point at a port nothing listens on unless a
# test points them at its own local server.
KIBO_BINANCE_P2P_URL = env("KIBO_BINANCE_P2P_URL", default="http://127.0.0.1:9")
KIBO_COINGECKO_URL = env("KIBO_COINGECKO_URL", default="http://127.0.0.1:9")

# The local chain's first development account, whose key devtools.embedded gives the worker.
KIBO_ESCROW_ADDRESS = env(
    "KIBO_ESCROW_ADDRESS", default="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
)

# Web Push goes to the test suite's own push service on loopback (tests/helpers/push_service.py)
KIBO_PUSH_SERVICES = [*KIBO_PUSH_SERVICES, "http://127.0.0.1:*"]  # noqa: F405
