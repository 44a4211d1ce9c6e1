"""Rate limits on what is cheap to send and dear to answer, and the client's address.

Attempts are counted in fixed windows over the shared cache (Redis), so every web process
counts the same ones. A refused request gets 429 with `Retry-After` (the seconds until its
window ends) and a sentence a person can read.

The client's address is REMOTE_ADDR, or, behind `KIBO_TRUSTED_PROXY_HOPS` proxies, the
address the outermost of them saw: X-Forwarded-For read from the right, since a client can
write anything on its left.
"""

import ipaddress
from functools import wraps

from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext as _

from kibo.cache import hit

# A client (one address) may make this many times a signed-in person's attempts: several
# people can share an address (a shop's wifi, a carrier's NAT).
CLIENT_FACTOR = 5


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR with no trusted proxy; behind N trusted proxies
    (KIBO_TRUSTED_PROXY_HOPS), the N-th address of X-Forwarded-For from the right, the one
    the outermost proxy saw. A header shorter than that, or not an address, is not trusted."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    hops = settings.KIBO_TRUSTED_PROXY_HOPS
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < hops:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-hops]))
    except ValueError:
        return remote


def too_many_response(request, retry_after: int, message: str | None = None):
    """429 with Retry-After: the sentence alone for htmx to swap in, a page otherwise."""
    message = message or _("Too many attempts. Try again in %(seconds)s seconds.") % {
        "seconds": retry_after
    }
    template = "too_many.html#message" if request.htmx else "too_many.html"
    response = render(request, template, {"message": message}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def refusal(request, scope: str) -> int | None:
    """Count one attempt of `scope` (a key of KIBO_RATE_LIMITS) for this request's person
    and client; the seconds to wait when either is over its limit, else None."""
    per_minute = settings.KIBO_RATE_LIMITS[scope]
    keys = [(f"{scope}:client:{client_ip(request)}", per_minute * CLIENT_FACTOR)]
    if request.user.is_authenticated:
        keys.append((f"{scope}:user:{request.user.pk}", per_minute))
    waits = [wait for key, limit in keys if (wait := hit(key, limit=limit)) is not None]
    return max(waits, default=None)


def limited(scope: str, *, when=lambda request: request.method == "POST"):
    """A view whose requests (the POSTs, or those `when` picks) count against `scope`'s
    limit per person and per client; over it, 429 and nothing else happens."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if when(request) and (wait := refusal(request, scope)) is not None:
                return too_many_response(request, wait)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
