from django.apps import AppConfig

from devtools.failpoints import failpoint
from escrow import checkpoints


class DevtoolsConfig(AppConfig):
    """Development and tests only (never in production's INSTALLED_APPS): the demo data
    command, and the failpoints the crash tests kill workers at."""

    name = "devtools"

    def ready(self):
        checkpoints.listen(failpoint)
