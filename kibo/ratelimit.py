"""A fixed-window rate limiter over the shared cache (Redis), so every web process counts
the same attempts."""

import time

from django.core.cache import cache


def rate_limit_allows(key: str, *, limit: int, window_seconds: int = 60) -> bool:
    """Count one attempt under `key`; True while this window holds at most `limit` of them."""
    bucket = f"ratelimit:{key}:{int(time.time() // window_seconds)}"
    cache.add(bucket, 0, timeout=window_seconds * 2)
    try:
        count = cache.incr(bucket)
    except ValueError:  # the bucket expired between add and incr: this is its first attempt
        cache.set(bucket, 1, timeout=window_seconds * 2)
        count = 1
    return count <= limit


def client_ip(request) -> str:
    """The client's address as the server saw it. Behind a proxy, set the proxy to pass the
    real address in REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips with a trusted proxy)."""
    return request.META.get("REMOTE_ADDR", "unknown")
