import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Config is cached in Redis; a rolled-back test must not leak its values to the next."""
    cache.clear()
    yield
    cache.clear()
