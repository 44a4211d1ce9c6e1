"""Telling people what happened while Kibo is closed: a notice goes to each of their
browsers by Web Push (kibo.webpush) and, when linked, to their Telegram chat
(kibo.telegram).

A service composes a notice in every language at the moment it happens and calls `notify`
inside its transaction; the notice is queued when the transaction commits (a rolled-back
change tells nobody), in batches of users, each batch one Celery task
(kibo.tasks.deliver_notice), so a request never waits on a push service. A device the push
service no longer knows is forgotten; a message a service did not take now is tried again
with backoff while it still matters (its TTL), and every outcome is counted
(kibo_notices_sent_total).
"""

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from kibo import telegram, webpush
from kibo.models import PushDevice, TelegramChat
from kibo.telemetry import NOTICE_SECONDS, NOTICES_SENT

logger = logging.getLogger(__name__)

DELIVER_TASK = "kibo.tasks.deliver_notice"
BATCH_USERS = 100  # users per delivery task: a thousand allies are ten tasks in parallel
RETRIES = 4  # after the first try; backoff doubles from RETRY_SECONDS
RETRY_SECONDS = 2


@dataclass(frozen=True)
class Notice:
    """One thing to tell, in every language Kibo speaks: a title and a body, the page a
    tap opens, and a tag (a newer notice with the same tag replaces the older one on the
    device). `ttl`: how long it is worth delivering, in seconds; `due`: when it was sent
    (epoch seconds), for the delivery-time figure."""

    kind: str
    texts: dict[str, tuple[str, str]]
    url: str
    tag: str
    ttl: int = 24 * 60 * 60
    urgency: str = "normal"
    due: float = field(default_factory=time.time)

    def text(self, language: str) -> tuple[str, str]:
        return self.texts.get(language) or self.texts[settings.LANGUAGE_CODE]

    def payload(self, language: str) -> bytes:
        """What the service worker shows (static/kibo/sw.js), for one device's language."""
        title, body = self.text(language)
        return json.dumps(
            {
                "title": title,
                "body": body,
                "url": self.url,
                "tag": self.tag,
                "lang": language,
                "timestamp": int(self.due * 1000),
            },
            ensure_ascii=False,
        ).encode()

    @property
    def topic(self) -> str:
        """The tag as the push service sees it, in clear: keyed and hashed, so it names no
        order and no kind of notice. A newer message of a topic replaces one not delivered."""
        keyed = hmac.new(settings.SECRET_KEY.encode(), self.tag.encode(), hashlib.sha256)
        return webpush.b64url(keyed.digest())[:32]

    def as_message(self) -> dict:
        return asdict(self)

    @classmethod
    def from_message(cls, message: dict) -> "Notice":
        texts = {language: tuple(text) for language, text in message.pop("texts").items()}
        return cls(texts=texts, **message)


def compose(kind: str, text: Callable[[], tuple[str, str]], **details) -> Notice:
    """A notice whose (title, body) `text` gives in each language, called with that
    language active."""
    texts = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            texts[language] = text()
    return Notice(kind=kind, texts=texts, **details)


def notify(*, user_ids: Iterable, notice: Notice) -> None:
    """Tell these users, once the caller's transaction commits (at once outside one)."""
    users = sorted({str(user_id) for user_id in user_ids})
    if not users:
        return

    def queue() -> None:
        message = {**notice.as_message(), "due": time.time()}
        for start in range(0, len(users), BATCH_USERS):
            current_app.send_task(DELIVER_TASK, args=[users[start : start + BATCH_USERS], message])

    transaction.on_commit(queue)


def _count(channel: str, notice: Notice, outcome: str, n: int = 1) -> None:
    if n:
        NOTICES_SENT.labels(channel, notice.kind, outcome).inc(n)


def _push(device: PushDevice, notice: Notice) -> str:
    """Send to one device: "sent", "gone", "retry" or "failed"."""
    try:
        webpush.push_send(
            endpoint=device.endpoint,
            p256dh=device.p256dh,
            auth=device.auth,
            payload=notice.payload(device.language),
            ttl=max(1, int(notice.due + notice.ttl - time.time())),
            urgency=notice.urgency,
            topic=notice.topic,
        )
    except webpush.PushGone:
        return "gone"
    except webpush.PushFailed as failure:
        logger.warning("push to device %s failed: %s", device.pk, failure)
        return "retry" if failure.retryable else "failed"
    except Exception:  # one device's fault (keys pywebpush can't use) stays that device's
        logger.exception("push to device %s could not be made", device.pk)
        return "failed"
    return "sent"


@dataclass
class Delivery:
    """What a delivery left to try again: devices and chats whose service did not take
    the notice now."""

    devices: list[str]
    chats: list[str]
    retry_after: int = 0  # the longest a service asked to wait (Telegram's 429)


def notice_deliver(
    *, notice: Notice, user_ids: list[str], device_ids=None, chat_user_ids=None
) -> Delivery:
    """Send the notice to the users' devices and chats (on a retry, to the `device_ids`
    and `chat_user_ids` left); what can't be taken now is returned for a later try."""
    if time.time() > notice.due + notice.ttl:  # too late to matter (an order gone)
        return Delivery(devices=[], chats=[])
    devices = PushDevice.objects.filter(user_id__in=user_ids)
    if device_ids is not None:  # a retry: what was left, still these users' devices
        devices = devices.filter(pk__in=device_ids)
    devices = list(devices)
    if devices and webpush.public_key():
        with ThreadPoolExecutor(max_workers=webpush.SENDERS) as senders:
            outcomes = list(senders.map(lambda device: _push(device, notice), devices))
    else:
        outcomes = []
    sent = [d.pk for d, outcome in zip(devices, outcomes, strict=False) if outcome == "sent"]
    gone = [d.pk for d, outcome in zip(devices, outcomes, strict=False) if outcome == "gone"]
    retry = [str(d.pk) for d, outcome in zip(devices, outcomes, strict=False) if outcome == "retry"]
    if gone:
        PushDevice.objects.filter(pk__in=gone).delete()
    if sent:
        PushDevice.objects.filter(pk__in=sent).update(last_pushed_at=timezone.now())
    for outcome in ("sent", "gone", "failed"):
        _count("push", notice, outcome, outcomes.count(outcome))
    chats_left, retry_after = _telegram(
        notice, user_ids if chat_user_ids is None else [u for u in chat_user_ids if u in user_ids]
    )
    NOTICE_SECONDS.labels(notice.kind).observe(max(0.0, time.time() - notice.due))
    return Delivery(devices=retry, chats=chats_left, retry_after=retry_after)


def _telegram(notice: Notice, user_ids: list[str]) -> tuple[list[str], int]:
    """Send to the users' linked Telegram chats: the users whose chat must wait, and how
    long Telegram asked to wait. After a 429 the rest of the batch waits too."""
    if not telegram.enabled() or not user_ids:
        return [], 0
    left: list[str] = []
    retry_after = 0
    for chat in TelegramChat.objects.filter(user_id__in=user_ids).order_by("user_id"):
        if retry_after or time.time() > notice.due + notice.ttl:
            left.append(str(chat.user_id))
            continue
        title, body = notice.text(chat.language)
        try:
            telegram.message_send(chat_id=chat.chat_id, text=f"{title}\n{body}", url=notice.url)
        except telegram.ChatGone:
            chat.delete()
            _count("telegram", notice, "gone")
        except telegram.TelegramFailed as failure:
            logger.warning("telegram message to chat of %s failed: %s", chat.user_id, failure)
            if failure.retryable:
                left.append(str(chat.user_id))
                retry_after = failure.retry_after or 0
            else:
                _count("telegram", notice, "failed")
        else:
            _count("telegram", notice, "sent")
    return left, retry_after


def retry_in(notice: Notice, *, attempt: int) -> int | None:
    """Seconds before try `attempt` (1, 2...), or None when it is given up: out of tries,
    or the notice would arrive too late to matter."""
    if attempt > RETRIES:
        return None
    wait = RETRY_SECONDS * 2 ** (attempt - 1)
    if time.time() + wait > notice.due + notice.ttl:
        return None
    return wait


def delivery_left(notice: Notice, left: Delivery, *, given_up: bool) -> None:
    """Count what a try left: to be retried, or (given up) failed."""
    outcome = "failed" if given_up else "retried"
    _count("push", notice, outcome, len(left.devices))
    _count("telegram", notice, outcome, len(left.chats))
