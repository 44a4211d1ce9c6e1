from django.core.cache import cache


def test_the_cache_keeps_one_client_per_pool():
    client = cache._cache.get_client(write=True)

    cache.set("greeting", "hola")

    assert cache.get("greeting") == "hola"
    assert cache._cache.get_client(write=True) is client
