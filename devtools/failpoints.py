"""Crash points for the exactly-once tests: with KIBO_FAILPOINT=<name> in its environment, a
process kills itself (SIGKILL, no cleanup) when escrow reaches the checkpoint of that name.
Installed by the devtools app (development and test settings only)."""

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("KIBO_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
