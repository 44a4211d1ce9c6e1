"""A Web Push service on a loopback port (RFC 8030), strict as the real ones: it checks the
sender's VAPID token (RFC 8292) and the push headers, then decrypts the message (RFC 8291)
with the keys of the browser it gave the subscription to, so a test reads what a browser
would show. Tests can script its answers per endpoint: 410 Gone, 500, 429 and so on."""

import base64
import binascii
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from itertools import count
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.helpers.loopback import Loopback, LoopbackServer

# What the push services of Chrome (FCM) and Firefox (autopush) accept as a body: 4096
# bytes of ciphertext, so about 3993 bytes of payload with pywebpush's aes128gcm framing.
MAX_BODY_BYTES = 4096
MAX_VAPID_LIFETIME_SECONDS = 24 * 60 * 60  # RFC 8292 section 2
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 section 5.3
TOPIC_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PushMessage:
    """A message the service accepted and decrypted, as the browser's service worker gets it."""

    endpoint: str
    token: str
    ttl: int
    urgency: str | None
    topic: str | None
    payload: bytes
    data: Any  # the payload parsed as JSON, None when it is not JSON
    arrived_at: float  # time.monotonic()


@dataclass(frozen=True)
class Refusal:
    """A request the service did not deliver: refused by a check, or by a scripted answer."""

    endpoint: str
    status: int
    reason: str
    arrived_at: float


@dataclass(frozen=True)
class Answer:
    """A scripted answer: the status and the headers sent with it (e.g. Retry-After)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


class Refused(Exception):
    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(frozen=True)
class _Subscription:
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes


class PushService(Loopback):
    """A push service on 127.0.0.1; `with PushService() as push:` runs it in a thread.

    `vapid_public_key` (base64url, as an application server publishes it) pins the key: a
    request signed with any other key is refused with 403, as once a browser subscribed
    with an applicationServerKey."""

    def __init__(self, *, vapid_public_key: str | None = None):
        self.vapid_public_key = vapid_public_key
        self._pinned_key = vapid_public_key
        self._changed = threading.Condition()
        self._subscriptions: dict[str, _Subscription] = {}
        self._answers: dict[str, list[Answer]] = {}
        self._messages: list[PushMessage] = []
        self._refused: list[Refusal] = []
        self._message_ids = count(1)
        super().__init__(_Handler, name="push-service")

    def reset(self) -> None:
        """Forget every subscription, message, refusal and scripted answer, and pin the key
        given to the constructor again: the next test starts from nothing."""
        with self._changed:
            self._subscriptions.clear()
            self._answers.clear()
            self._messages.clear()
            self._refused.clear()
            self.vapid_public_key = self._pinned_key

    def subscription(self) -> dict[str, Any]:
        """Subscribe as a browser does: a fresh P-256 key pair and auth secret; the answer is
        PushSubscription.toJSON(), what the page posts to the application server."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        auth_secret = secrets.token_bytes(16)
        token = secrets.token_urlsafe(24)
        endpoint = f"{self.origin}/push/{token}"
        with self._changed:
            self._subscriptions[token] = _Subscription(endpoint, private_key, auth_secret)
        public_point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": endpoint,
            "keys": {"p256dh": b64url_encode(public_point), "auth": b64url_encode(auth_secret)},
        }

    def answer(self, endpoint: str, *answers: int | tuple[int, dict[str, str]]) -> None:
        """Script what the endpoint answers: one answer a request, the last one for good.
        201 delivers as usual; any other status is answered without delivering, e.g.
        `answer(ep, 410)` (unsubscribed), `answer(ep, 500, 201)` (fails once), or
        `answer(ep, (429, {"Retry-After": "1"}), 201)`."""
        if not answers:
            raise ValueError("script at least one answer")
        scripted = []
        for each in answers:
            status, headers = each if isinstance(each, tuple) else (each, {})
            if status != HTTPStatus.CREATED and status < 400:
                raise ValueError(f"a push service answers 201 or an error, not {status}")
            scripted.append(Answer(status, tuple(headers.items())))
        with self._changed:
            self._answers[endpoint] = scripted

    @property
    def messages(self) -> list[PushMessage]:
        with self._changed:
            return list(self._messages)

    def messages_for(self, endpoint: str) -> list[PushMessage]:
        return [message for message in self.messages if message.endpoint == endpoint]

    @property
    def refused(self) -> list[Refusal]:
        with self._changed:
            return list(self._refused)

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[PushMessage]:
        """Block until `count` messages arrived in all; fail the test if they don't in time."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise AssertionError(
                    f"{len(self._messages)} of {count} push messages arrived in {timeout} s; "
                    f"refused: {self._refused}"
                )
            return list(self._messages)

    # --- what happens to a request ---------------------------------------------------------

    def _receive(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str]]:
        """Answer a POST to `path`: check it, deliver it, and say where the message is."""
        arrived_at = time.monotonic()
        endpoint = self.origin + path
        try:
            message = self._checked(path, headers, body, arrived_at)
        except Refused as refusal:
            with self._changed:
                self._refused.append(Refusal(endpoint, refusal.status, refusal.reason, arrived_at))
            raise
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()
        return HTTPStatus.CREATED, {"Location": f"{self.origin}/message/{next(self._message_ids)}"}

    def _checked(self, path: str, headers: Any, body: bytes, arrived_at: float) -> PushMessage:
        token = path.removeprefix("/push/")
        with self._changed:
            subscription = self._subscriptions.get(token) if path.startswith("/push/") else None
        if subscription is None:
            raise Refused(HTTPStatus.NOT_FOUND, "no such subscription")
        self._check_vapid(headers.get("Authorization", ""))
        ttl, urgency, topic = self._push_headers(headers, body)
        if len(body) > MAX_BODY_BYTES:
            raise Refused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body of {len(body)} bytes, over {MAX_BODY_BYTES}",
            )
        scripted = self._next_answer(subscription.endpoint)
        if scripted.status != HTTPStatus.CREATED:
            raise Refused(scripted.status, "scripted answer", scripted.headers)
        payload = self._decrypted(subscription, body)
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        return PushMessage(
            subscription.endpoint, token, ttl, urgency, topic, payload, data, arrived_at
        )

    def _check_vapid(self, authorization: str) -> None:
        scheme, _, parameters = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(HTTPStatus.UNAUTHORIZED, "Authorization is not 'vapid t=..., k=...'")
        # pywebpush (py_vapid's Vapid02) writes "t=...,k=...", RFC 8292's example ", ".
        fields = dict(part.strip().partition("=")[::2] for part in parameters.split(","))
        token, key = fields.get("t", ""), fields.get("k", "")
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(key)
            )
            header_part, claims_part, signature_part = token.split(".")
            header = json.loads(b64url_decode(header_part))
            claims = json.loads(b64url_decode(claims_part))
            signature = b64url_decode(signature_part)
        except (ValueError, binascii.Error):
            raise Refused(HTTPStatus.UNAUTHORIZED, "malformed VAPID token or key") from None
        if header.get("alg") != "ES256" or len(signature) != 64:
            raise Refused(HTTPStatus.UNAUTHORIZED, "VAPID token is not ES256")
        # JWS carries ES256 signatures as raw r || s; cryptography verifies DER.
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public_key.verify(
                der, f"{header_part}.{claims_part}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            raise Refused(HTTPStatus.UNAUTHORIZED, "VAPID signature does not verify") from None
        self._check_claims(claims)
        if self.vapid_public_key is not None and key != self.vapid_public_key:
            raise Refused(HTTPStatus.FORBIDDEN, "VAPID key is not the subscription's")

    def _check_claims(self, claims: Any) -> None:
        if not isinstance(claims, dict):
            raise Refused(HTTPStatus.UNAUTHORIZED, "VAPID claims are not an object")
        if claims.get("aud") != self.origin:
            raise Refused(HTTPStatus.UNAUTHORIZED, f"aud {claims.get('aud')!r} != {self.origin}")
        expires = claims.get("exp")
        now = time.time()
        if not isinstance(expires, int) or expires <= now:
            raise Refused(HTTPStatus.UNAUTHORIZED, "VAPID token expired")
        if expires > now + MAX_VAPID_LIFETIME_SECONDS:
            raise Refused(HTTPStatus.UNAUTHORIZED, "VAPID exp more than 24 h ahead")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.startswith(("mailto:", "https:")):
            raise Refused(HTTPStatus.UNAUTHORIZED, "VAPID sub is not a mailto: or https: URI")

    def _push_headers(self, headers: Any, body: bytes) -> tuple[int, str | None, str | None]:
        ttl = headers.get("TTL", "")
        if not ttl.isdigit():
            raise Refused(HTTPStatus.BAD_REQUEST, "TTL header missing or not a number")
        urgency, topic = headers.get("Urgency"), headers.get("Topic")
        if urgency is not None and urgency not in URGENCIES:
            raise Refused(HTTPStatus.BAD_REQUEST, f"Urgency {urgency!r} is not one of {URGENCIES}")
        if topic is not None and (len(topic) > 32 or not set(topic) <= TOPIC_ALPHABET):
            raise Refused(HTTPStatus.BAD_REQUEST, "Topic is not 1-32 base64url characters")
        if body and headers.get("Content-Encoding") != "aes128gcm":
            raise Refused(HTTPStatus.BAD_REQUEST, "Content-Encoding is not aes128gcm")
        return int(ttl), urgency, topic

    def _next_answer(self, endpoint: str) -> Answer:
        with self._changed:
            scripted = self._answers.get(endpoint)
            if not scripted:
                return Answer(HTTPStatus.CREATED)
            return scripted.pop(0) if len(scripted) > 1 else scripted[0]

    def _decrypted(self, subscription: _Subscription, body: bytes) -> bytes:
        if not body:
            return b""
        try:
            return http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth_secret,
                version="aes128gcm",
            )
        except Exception as error:  # http_ece raises several kinds for a body it can't open
            raise Refused(HTTPStatus.BAD_REQUEST, f"cannot decrypt: {error!r}") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm on, a kept-alive
    # connection waits for the client's delayed ACK, some 40 ms a request.
    disable_nagle_algorithm = True
    server: LoopbackServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, headers = self.server.fake._receive(self.path, self.headers, body)
        except Refused as refusal:
            self._reply(refusal.status, refusal.reason.encode(), dict(refusal.headers))
            return
        self._reply(status, b"", headers)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's own output is what matters, and refusals are recorded."""
