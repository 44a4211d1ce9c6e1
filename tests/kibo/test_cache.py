import pytest
from django.core.cache import cache

from kibo.cache import Cached, read_through, renew_generations


def test_the_cache_keeps_one_client_per_pool():
    client = cache._cache.get_client(write=True)

    cache.set("greeting", "hola")

    assert cache.get("greeting") == "hola"
    assert cache._cache.get_client(write=True) is client


@pytest.mark.django_db
def test_a_value_is_computed_once_per_generation():
    computed = []

    def compute():
        computed.append(1)
        return len(computed), 60

    entry = Cached("thing", "thing-value", compute)
    assert read_through(entry, entry) == [1, 1]
    assert read_through(entry) == [1]

    renew_generations("thing")
    assert read_through(entry) == [2]

    cache.clear()  # the cache lost everything: a new generation, computed again
    assert read_through(entry) == [3]
