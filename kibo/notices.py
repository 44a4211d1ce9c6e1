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
from collections import defaultdict
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

    def seconds_left(self) -> float:
        """How much longer it is worth delivering (0 or less: too late, an order gone)."""
        return self.due + self.ttl - time.time()

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


def _push(device: PushDevice, notice: Notice) -> tuple[str, int]:
    """Send to one device: ("sent", "gone", "retry" or "failed", seconds the push service
    asked to wait)."""
    try:
        webpush.push_send(
            endpoint=device.endpoint,
            p256dh=device.p256dh,
            auth=device.auth,
            payload=notice.payload(device.language),
            ttl=max(1, int(notice.seconds_left())),
            urgency=notice.urgency,
            topic=notice.topic,
        )
    except webpush.PushGone:
        return "gone", 0
    except webpush.PushFailed as failure:
        logger.warning("push to device %s failed: %s", device.pk, failure)
        return ("retry" if failure.retryable else "failed"), failure.retry_after or 0
    except Exception:  # one device's fault (keys pywebpush can't use) stays that device's
        logger.exception("push to device %s could not be made", device.pk)
        return "failed", 0
    return "sent", 0


@dataclass
class Delivery:
    """What a delivery left to try again: devices and chats whose service did not take
    the notice now."""

    devices: list[str]
    chats: list[str]
    retry_after: int = 0  # the longest a service asked to wait (a 429's Retry-After)


def notice_deliver(
    *, notice: Notice, user_ids: list[str], device_ids=None, chat_user_ids=None
) -> Delivery:
    """Send the notice to the users' devices and chats (on a retry, to the `device_ids`
    and `chat_user_ids` left); what can't be taken now is returned for a later try."""
    if notice.seconds_left() <= 0:
        return Delivery(devices=[], chats=[])
    devices = PushDevice.objects.filter(user_id__in=user_ids)
    if device_ids is not None:  # a retry: what was left, still these users' devices
        devices = devices.filter(pk__in=device_ids)
    pushed: dict[str, list] = defaultdict(list)  # outcome -> device ids
    push_wait = 0
    if webpush.sending():
        with ThreadPoolExecutor(max_workers=webpush.SENDERS) as senders:
            sends = list(devices)
            for device, (outcome, wait) in zip(
                sends, senders.map(lambda device: _push(device, notice), sends), strict=True
            ):
                pushed[outcome].append(device.pk)
                push_wait = max(push_wait, wait)
    if pushed["gone"]:
        PushDevice.objects.filter(pk__in=pushed["gone"]).delete()
    if pushed["sent"]:
        PushDevice.objects.filter(pk__in=pushed["sent"]).update(last_pushed_at=timezone.now())
    for outcome in ("sent", "gone", "failed"):
        _count("push", notice, outcome, len(pushed[outcome]))
    if chat_user_ids is not None:  # a retry: what was left, still these users' chats
        chat_user_ids = set(chat_user_ids) & set(user_ids)
    chats_left, chat_wait = _telegram(notice, user_ids if chat_user_ids is None else chat_user_ids)
    NOTICE_SECONDS.labels(notice.kind).observe(max(0.0, time.time() - notice.due))
    return Delivery(
        devices=[str(pk) for pk in pushed["retry"]],
        chats=chats_left,
        retry_after=max(push_wait, chat_wait),
    )


def _telegram(notice: Notice, user_ids: Iterable[str]) -> tuple[list[str], int]:
    """Send to the users' linked Telegram chats: the users whose chat must wait, and how
    long Telegram asked to wait. After a 429 the rest of the batch waits too."""
    if not telegram.enabled() or not user_ids:
        return [], 0
    left: list[str] = []
    retry_after = 0
    for chat in TelegramChat.objects.filter(user_id__in=user_ids).order_by("user_id"):
        if retry_after or notice.seconds_left() <= 0:
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


def retry_in(notice: Notice, left: Delivery, *, attempt: int) -> int | None:
    """Seconds before try `attempt` (1, 2...) of what a delivery left: the backoff, or
    longer when a service asked; None when it is given up (out of tries, or it would come
    too late to matter). What is left is counted as retried or failed."""
    wait: int | None = max(RETRY_SECONDS * 2 ** (attempt - 1), left.retry_after)
    if attempt > RETRIES or wait >= notice.seconds_left():
        wait = None
    outcome = "failed" if wait is None else "retried"
    _count("push", notice, outcome, len(left.devices))
    _count("telegram", notice, outcome, len(left.chats))
    return wait
