"""Before Django is configured, start embedded PostgreSQL and Valkey for the test session
unless DATABASE_URL / REDIS_URL name real servers; stop them when pytest ends."""

import signal
from contextlib import ExitStack

import pytest

from devtools.embedded import embedded_services

_services = ExitStack()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # A terminated or hung-up run unwinds like Ctrl-C, so the servers below are stopped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    _services.enter_context(embedded_services("test"))


def pytest_unconfigure(config):
    _services.close()
