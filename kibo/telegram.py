"""Telegram, a second channel for the same notices, when the deployment has a bot
(KIBO_TELEGRAM_BOT_TOKEN; without it nothing of Telegram shows).

A person links their chat from Kibo with a one-time deep link (t.me/<bot>?start=<token>,
valid LINK_SECONDS); Telegram hands the bot a `/start <token>` message, which beat reads
with getUpdates (kibo.tasks.read_telegram) and links. `/stop` in the chat unlinks it.
Calls are plain HTTPS to the Bot API. A 429 says how long to wait (retry_after): the
notice's delivery backs off at least that long (kibo.notices).
"""

import logging
import secrets

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from kibo.models import TelegramChat, User

logger = logging.getLogger(__name__)

LINK_SECONDS = 15 * 60
TIMEOUT = httpx.Timeout(10.0, connect=3.05)
OFFSET_KEY = "telegram:offset"  # the next update to read; Telegram keeps older ones a day
BOT_KEY = "telegram:bot-username"
# One connection kept alive to the Bot API, not a TLS handshake per message of a batch.
_client = httpx.Client(timeout=TIMEOUT)


class TelegramFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool, retry_after: int | None = None):
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after = retry_after


class ChatGone(Exception):
    """The chat blocked the bot or no longer exists: forget the link."""


def enabled() -> bool:
    return bool(settings.KIBO_TELEGRAM_BOT_TOKEN)


def _call(method: str, **params) -> dict | list | bool:
    url = f"{settings.KIBO_TELEGRAM_API_URL}/bot{settings.KIBO_TELEGRAM_BOT_TOKEN}/{method}"
    try:
        response = _client.post(url, json=params)
        answer = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise TelegramFailed(
            f"{method}: no answer ({type(error).__name__})", retryable=True
        ) from None
    if answer.get("ok"):
        return answer["result"]
    code, description = (
        answer.get("error_code", response.status_code),
        answer.get("description", ""),
    )
    if code == 429:
        retry_after = int(answer.get("parameters", {}).get("retry_after", 1))
        raise TelegramFailed(f"{method}: {description}", retryable=True, retry_after=retry_after)
    if (
        code in (400, 403)
        and method == "sendMessage"
        and (
            "chat not found" in description
            or "blocked" in description
            or "deactivated" in description
        )
    ):
        raise ChatGone(description)
    raise TelegramFailed(f"{method}: {code} {description}", retryable=code >= 500)


def _absolute(url: str) -> str:
    return settings.KIBO_SITE_URL.rstrip("/") + url


def message_send(*, chat_id: int, text: str, url: str | None = None) -> None:
    """A message to the chat; the page `url` opens from a button (Telegram takes only
    https links in buttons; over http the link goes in the text)."""
    params: dict = {"chat_id": chat_id, "text": text, "link_preview_options": {"is_disabled": True}}
    if url:
        link = _absolute(url)
        if link.startswith("https://"):
            params["reply_markup"] = {"inline_keyboard": [[{"text": _("Open Kibo"), "url": link}]]}
        else:
            params["text"] = f"{text}\n{link}"
    _call("sendMessage", **params)


def bot_username() -> str:
    username = cache.get(BOT_KEY)
    if username is None:
        username = _call("getMe")["username"]
        cache.set(BOT_KEY, username, 24 * 60 * 60)
    return username


def link_start(*, user: User, language: str) -> str:
    """A one-time deep link that links the chat that opens it to `user`."""
    token = secrets.token_urlsafe(24)  # Telegram's start payloads: A-Z a-z 0-9 _ -
    cache.set(f"telegram:link:{token}", {"user": str(user.pk), "language": language}, LINK_SECONDS)
    return f"https://t.me/{bot_username()}?start={token}"


def chat_unlink(*, user: User) -> bool:
    return TelegramChat.objects.filter(user=user).delete()[0] > 0


@transaction.atomic
def _link(*, token: str, chat_id: int) -> TelegramChat | None:
    key = f"telegram:link:{token}"
    pending = cache.get(key)
    if pending is None or not cache.delete(key):  # used or expired: one chat per link
        return None
    # the chat is this user's now, and the user's only chat
    TelegramChat.objects.filter(Q(chat_id=chat_id) | Q(user_id=pending["user"])).delete()
    return TelegramChat.objects.create(
        user_id=pending["user"], chat_id=chat_id, language=pending["language"]
    )


def _answer(chat_id: int, text: str) -> None:
    try:
        message_send(chat_id=chat_id, text=text)
    except (TelegramFailed, ChatGone) as failure:
        logger.warning("telegram answer to a chat failed: %s", failure)


def _language(code: str | None) -> str:
    """Kibo's language for a Telegram user's (Spanish unless it is one Kibo speaks)."""
    spoken = {language for language, _name in settings.LANGUAGES}
    short = (code or "")[:2].lower()
    return short if short in spoken else settings.LANGUAGE_CODE


READING_KEY = "telegram:reading"
READING_SECONDS = 60  # longer than a run: its answers take at most a few timeouts


def updates_read() -> int:
    """Read what people wrote to the bot since the last read, and act on it: link a chat
    (`/start <token>`), unlink it (`/stop`). Returns how many updates were read. One run
    at a time (beat may start the next before this one ends), and each update is marked
    read before it is acted on, so none is acted on twice."""
    if not cache.add(READING_KEY, 1, READING_SECONDS):
        return 0
    try:
        return _updates_read()
    finally:
        cache.delete(READING_KEY)


def _updates_read() -> int:
    offset = cache.get(OFFSET_KEY, 0)
    updates = _call("getUpdates", offset=offset, timeout=0, allowed_updates=["message"])
    for received in updates:
        cache.set(OFFSET_KEY, received["update_id"] + 1, None)
        message = received.get("message") or {}
        chat_id = (message.get("chat") or {}).get("id")
        text = (message.get("text") or "").strip()
        if chat_id is None or (message.get("chat") or {}).get("type") != "private":
            continue
        command, _space, argument = text.partition(" ")
        language = _language((message.get("from") or {}).get("language_code"))
        if command == "/start" and argument:
            chat = _link(token=argument.strip(), chat_id=chat_id)
            with translation.override(chat.language if chat else language):
                _answer(
                    chat_id,
                    _("Linked. Kibo will tell you here of your orders. Send /stop to unlink.")
                    if chat
                    else _("That link has expired or was used. Open Kibo and link Telegram again."),
                )
        elif command == "/stop":
            linked = TelegramChat.objects.filter(chat_id=chat_id).first()
            if linked:
                linked.delete()
            with translation.override(linked.language if linked else language):
                _answer(chat_id, _("Unlinked. Kibo won't write to you here any more."))
        else:
            with translation.override(language):
                _answer(chat_id, _("To link this chat, open Kibo and tap “Link Telegram”."))
    return len(updates)
