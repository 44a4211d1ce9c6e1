"""Development: `make run` (devtools.launch) points DATABASE_URL and REDIS_URL at embedded
servers; the devtools app is installed (the demo data)."""

from kibo.env import env

from .base import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]  # noqa: F405
DEBUG = env.bool("DJANGO_DEBUG", default=True)

KIBO_ENABLED_NETWORKS = env.list("KIBO_ENABLED_NETWORKS", default=["local"])

# The local chain's first development account, whose key devtools.embedded gives the worker.
KIBO_ESCROW_ADDRESS = env(
    "KIBO_ESCROW_ADDRESS", default="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
)
