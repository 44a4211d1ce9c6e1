"""Web Push: a message to a browser with Kibo closed, through the push service its vendor
runs (RFC 8030), signed with Kibo's VAPID key (RFC 8292) and encrypted to the browser's own
keys (RFC 8291, aes128gcm), so the push service reads nothing but where it goes.

Browsers subscribe with the public key (KIBO_VAPID_PUBLIC_KEY, on every page that offers
it). Only the worker that sends reads the private key from its environment
(KIBO_VAPID_PRIVATE_KEY), at its first message. `make run` makes a pair for development.
"""

import base64
import functools
import logging
import os
import re
import threading
import time
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from py_vapid import Vapid
from pywebpush import WebPusher
from requests.adapters import HTTPAdapter

logger = logging.getLogger(__name__)

PUSH_TIMEOUT = (3.05, 10)  # connect, read: a slow push service must not hold a batch
SIGNATURE_SECONDS = 12 * 60 * 60  # a VAPID signature's life (RFC 8292: at most 24 h)
SENDERS = 16  # messages in flight at once per worker process


class PushGone(Exception):
    """The push service no longer knows the subscription (404, 410): forget the device."""


class PushFailed(Exception):
    """The push service did not take the message: now (5xx, 429, no answer: `retryable`,
    try later), or ever (another 4xx: Kibo's request is wrong, trying again won't help)."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: int | None = None):
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after = retry_after


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vapid_keys_new() -> tuple[str, str]:
    """A new VAPID key pair as the environment holds them: (private, public), base64url of
    the raw private number and of the public point (the browser's applicationServerKey)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(private), b64url(public)


def public_key() -> str:
    """What a browser subscribes with; empty when this deployment has no Web Push."""
    return settings.KIBO_VAPID_PUBLIC_KEY


def sending() -> bool:
    """Whether this process sends Web Push: the deployment has it, and this is the process
    given the private key (a worker without it says so once, not once per device)."""
    if not public_key():
        return False
    if not os.environ.get("KIBO_VAPID_PRIVATE_KEY"):
        _warn_once()
        return False
    return True


@functools.cache
def _warn_once() -> None:
    logger.error("KIBO_VAPID_PRIVATE_KEY is not set in this worker: no Web Push is sent.")


class _Signer:
    """The VAPID key, read once, and a signature per push service (the JWT's audience is
    the service's origin), reused until it is near its end."""

    def __init__(self):
        self._lock = threading.Lock()
        self._vapid: Vapid | None = None
        self._signed: dict[str, tuple[float, dict]] = {}

    def headers(self, endpoint: str) -> dict:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            expires, headers = self._signed.get(audience, (0.0, {}))
            if expires - time.time() < SIGNATURE_SECONDS / 4:
                expires = int(time.time()) + SIGNATURE_SECONDS
                claims = {"aud": audience, "exp": expires, "sub": settings.KIBO_VAPID_SUBJECT}
                headers = self._key().sign(claims)
                self._signed[audience] = (expires, headers)
            return dict(headers)

    def _key(self) -> Vapid:
        if self._vapid is None:
            self._vapid = Vapid.from_raw(os.environ["KIBO_VAPID_PRIVATE_KEY"].encode())
        return self._vapid


_signer = _Signer()
_session = requests.Session()
_session.mount("https://", HTTPAdapter(pool_connections=8, pool_maxsize=SENDERS))
_session.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=SENDERS))
# Without a proxy in the environment, requests need not read it (and look for ~/.netrc)
# again for every message: a third of a push's CPU (bench/pushes.py). The CA bundle the
# environment names is read once instead.
if not requests.utils.getproxies():
    _session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    _session.trust_env = False


def push_send(
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    payload: bytes,
    ttl: int,
    urgency: str = "normal",
    topic: str | None = None,
) -> None:
    """Encrypt `payload` to the subscription and hand it to its push service, which keeps
    it up to `ttl` seconds for a device that is off. Raises PushGone or PushFailed."""
    headers = {**_signer.headers(endpoint), "Urgency": urgency}
    if topic:
        headers["Topic"] = topic  # a newer message of the topic replaces one not delivered
    subscription = {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
    try:
        response = WebPusher(subscription, requests_session=_session).send(
            payload, headers=headers, ttl=ttl, content_encoding="aes128gcm", timeout=PUSH_TIMEOUT
        )
    except requests.RequestException as error:
        raise PushFailed(f"no answer: {type(error).__name__}", retryable=True) from None
    if response.status_code in (404, 410):
        raise PushGone(str(response.status_code))
    if response.status_code >= 300:
        retry_after = response.headers.get("Retry-After", "")
        raise PushFailed(
            str(response.status_code),
            retryable=response.status_code == 429 or response.status_code >= 500,
            retry_after=int(retry_after) if retry_after.isdigit() else None,
        )


# A push endpoint as browsers give them: scheme, a plain host (no userinfo, no backslash,
# nothing two URL parsers could read differently), an optional port, a path.
ENDPOINT_RE = re.compile(r"(https?)://([a-z0-9.-]+)(?::([0-9]{1,5}))?(/[^\s\\]*)?", re.IGNORECASE)
KEY_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def endpoint_allowed(endpoint: str) -> bool:
    """Whether `endpoint` is at a push service this deployment sends to
    (KIBO_PUSH_SERVICES: origins, a `*.` host wildcard allowed, `:*` any port). Kibo's
    worker posts to whatever endpoint a browser gave, so anything else (an address inside
    the network) is refused when the browser subscribes."""
    match = ENDPOINT_RE.fullmatch(endpoint or "")
    if match is None:
        return False
    scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3)
    for allowed in settings.KIBO_PUSH_SERVICES:
        allowed_scheme, _sep, authority = allowed.partition("://")
        pattern, _colon, allowed_port = authority.lower().partition(":")
        if scheme != allowed_scheme or ((port or "") != allowed_port and allowed_port != "*"):
            continue
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def key_bytes(value: object) -> bytes:
    """A base64url key of a subscription (padding optional); ValueError if it is not."""
    if not isinstance(value, str) or len(value) > 200 or not KEY_RE.fullmatch(value):
        raise ValueError("not a key")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def public_point(p256dh: bytes) -> None:
    """ValueError unless `p256dh` is a point on P-256 (the browser's key to encrypt to)."""
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
