"""Before Django is configured, start embedded PostgreSQL and Valkey for the test session
unless DATABASE_URL / REDIS_URL name real servers; stop them when pytest ends."""

from contextlib import ExitStack

import pytest

_services = ExitStack()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    from kibo.embedded import embedded_services

    _services.enter_context(embedded_services("test"))


def pytest_unconfigure(config):
    _services.close()
