import importlib

import pytest
from django.apps import apps
from django.core.cache import cache

SEED_MIGRATIONS = [
    importlib.import_module("kibo.migrations.0002_seed_system_config"),
    importlib.import_module("kibo.migrations.0003_treasury_addresses"),
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Config is cached in Redis; a rolled-back test must not leak its values to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _seeded_config(request):
    """Transactional tests start from a flushed database: put back what migrations seed."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        for migration in SEED_MIGRATIONS:
            migration.seed(apps, None)


@pytest.fixture
def admin_user(db):
    """Staff sign in to the admin with a username; their identity is still a wallet."""
    from kibo.models import User
    from tests.factories import wallet

    return User.objects.create_superuser(wallet(), password="staff-password", username="staff")
