"""A fake of the Telegram Bot API's HTTP surface (https://core.telegram.org/bots/api) on a
loopback port, for the methods Kibo calls: getMe, getUpdates and sendMessage, answered in
Telegram's shapes and with its errors (401 wrong token, 400 chat not found, 403 blocked,
409 two pollers, 429 flood control). A test plays the users (`user_sends`, `block`) and
reads what the bot sent (`sent`, `wait_for_sent`) and when it called (`calls`)."""

import json
import re
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from itertools import count
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.helpers.loopback import Loopback, LoopbackServer

DEFAULT_TOKEN = "7000000001:AAHkiboTestTokenNotARealOne_0123456789"
MAX_TEXT_CHARACTERS = 4096  # sendMessage: 1-4096 characters after entities parsing
MAX_CALLBACK_DATA_BYTES = 64
FIRST_UPDATE_ID = 300_000_001  # Telegram's ids are large and keep growing; so do these
# getUpdates' allowed_updates: an empty list means every type but these three.
NOT_SENT_UNLESS_ASKED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
UPDATE_TYPES = frozenset({"message", "my_chat_member"}) | NOT_SENT_UNLESS_ASKED
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
# The tags and named entities Telegram's HTML parse mode knows.
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji"}
)
HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
HTML_TAG_NAME = re.compile(r"<(/?)([a-zA-Z0-9-]*)")
HTML_ENTITY = re.compile(r"&(?:#(\d+)|#x([0-9a-fA-F]+)|([a-zA-Z]+));")
# MarkdownV2: these must be escaped with a backslash outside entities.
MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
MARKDOWN_V2_STYLES = (
    ("||", "Spoiler"),
    ("__", "Underline"),
    ("*", "Bold"),
    ("_", "Italic"),
    ("~", "Strikethrough"),
)
BUTTON_ACTIONS = frozenset(
    {"url", "callback_data", "web_app", "login_url", "switch_inline_query", "pay"}
    | {"switch_inline_query_current_chat", "switch_inline_query_chosen_chat"}
    | {"copy_text", "callback_game"}
)


class TelegramError(Exception):
    """An answer with "ok": false, as Telegram words it."""

    def __init__(self, status: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body = {"ok": False, "error_code": self.status, "description": self.description}
        return body | ({"parameters": self.parameters} if self.parameters else {})


def bad_request(description: str) -> TelegramError:
    return TelegramError(HTTPStatus.BAD_REQUEST, f"Bad Request: {description}")


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent and Telegram accepted."""

    chat_id: int
    message_id: int
    text: str  # as the bot sent it, markup included
    plain_text: str  # as the user reads it: tags and escapes gone
    parse_mode: str | None
    reply_markup: dict | None
    link_preview_disabled: bool
    sent_at: float  # time.monotonic()

    @property
    def button_urls(self) -> list[str]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button["url"] for row in rows for button in row if "url" in button]


@dataclass(frozen=True)
class Call:
    """A request to the API, answered or not: its method as written, parameters and status."""

    method: str
    params: dict[str, Any]
    status: int
    at: float  # time.monotonic() when it arrived


class FakeTelegram(Loopback):
    """The Bot API on 127.0.0.1; `with FakeTelegram() as telegram:` runs it in a thread.
    Callers use `{base_url}/bot{token}/{method}`. Long polls wait at most
    `max_poll_seconds`, whatever timeout they ask for, so tests stay fast."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, max_poll_seconds: float = 2.0):
        self.token = token
        self.max_poll_seconds = max_poll_seconds
        self.bot = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "Kibo",
            "username": "kibo_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._changed = threading.Condition()
        self._update_ids = count(FIRST_UPDATE_ID)
        self._polls = 0  # getUpdates calls so far; survives reset, so no count repeats
        self._reset_state()
        self._methods = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
        }
        super().__init__(_Handler, name="fake-telegram")

    def _reset_state(self) -> None:
        self._users: dict[int, dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._last_message_id: dict[int, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._allowed_updates = UPDATE_TYPES - NOT_SENT_UNLESS_ASKED
        self._limits: list[int] = []
        self._sent: list[SentMessage] = []
        self._calls: list[Call] = []

    @property
    def base_url(self) -> str:
        return self.origin

    def reset(self) -> None:
        """Forget every chat, update, message, call and limit: the next test starts afresh.
        Update ids keep growing, as Telegram's do."""
        with self._changed:
            self._reset_state()
            self._changed.notify_all()

    # --- the test plays the users ----------------------------------------------------------

    def user_sends(
        self,
        chat_id: int,
        text: str,
        *,
        first_name: str = "Ana",
        username: str | None = None,
        language_code: str | None = "es",
    ) -> dict[str, Any]:
        """A user writes to the bot in a private chat (e.g. `/start <payload>` from a deep
        link); the chat becomes known, and unblocked if it was. Returns the update."""
        user = {"id": chat_id, "is_bot": False, "first_name": first_name}
        user |= {"username": username} if username else {}
        user |= {"language_code": language_code} if language_code else {}
        chat = {"id": chat_id, "first_name": first_name}
        chat |= {"username": username} if username else {}
        chat |= {"type": "private"}
        message = {
            "message_id": 0,
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [
                {"offset": 0, "length": utf16_length(command), "type": "bot_command"}
            ]
        with self._changed:
            self._users[chat_id], self._chats[chat_id] = user, chat
            if chat_id in self._blocked:  # writing to a bot one blocked means unblocking it
                self._blocked.discard(chat_id)
                self._queue("my_chat_member", self._membership(chat_id, "kicked", "member"))
            message["message_id"] = self._next_message_id(chat_id)
            return self._queue("message", message)

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sends to the chat now answer 403."""
        with self._changed:
            if chat_id not in self._chats:
                raise ValueError(f"chat {chat_id} never wrote to the bot")
            self._blocked.add(chat_id)
            self._queue("my_chat_member", self._membership(chat_id, "member", "kicked"))

    def limit(self, times: int, *, retry_after: int = 1) -> None:
        """Flood control: the next `times` sendMessage calls answer 429 with retry_after."""
        with self._changed:
            self._limits.extend([retry_after] * times)

    # --- what the test reads ---------------------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        with self._changed:
            return list(self._sent)

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return [message for message in self.sent if message.chat_id == chat_id]

    def wait_for_sent(self, count: int, *, timeout: float = 5.0) -> list[SentMessage]:
        """Block until `count` messages were sent in all; fail the test if not in time."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._sent) >= count, timeout):
                raise AssertionError(
                    f"{len(self._sent)} of {count} messages were sent in {timeout} s; "
                    f"calls: {self._calls}"
                )
            return list(self._sent)

    @property
    def calls(self) -> list[Call]:
        with self._changed:
            return sorted(self._calls, key=lambda call: call.at)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates with a higher offset."""
        with self._changed:
            return list(self._updates)

    # --- the API ---------------------------------------------------------------------------

    def _answer(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        arrived_at = time.monotonic()
        match = re.fullmatch(r"/bot([^/]*)/([^/]*)", path)
        method = match.group(2) if match else path
        try:
            if match is None:
                raise TelegramError(HTTPStatus.NOT_FOUND, "Not Found")
            if match.group(1) != self.token:
                raise TelegramError(HTTPStatus.UNAUTHORIZED, "Unauthorized")
            handler = self._methods.get(method.lower())  # Bot API methods ignore case
            if handler is None:
                raise TelegramError(HTTPStatus.NOT_FOUND, "Not Found")
            status, body = HTTPStatus.OK, {"ok": True, "result": handler(params)}
        except TelegramError as error:
            status, body = error.status, error.body()
        with self._changed:
            self._calls.append(Call(method, params, status, arrived_at))
        return status, body

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.bot)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = integer_param(params, "offset", 0)
        limit = min(max(integer_param(params, "limit", 100), 1), 100)
        timeout = min(max(integer_param(params, "timeout", 0), 0), self.max_poll_seconds)
        allowed = json_param(params, "allowed_updates")
        deadline = time.monotonic() + timeout
        with self._changed:
            # A newer poll ends the one still waiting, as on Telegram (409).
            self._polls += 1
            mine = self._polls
            self._changed.notify_all()
            if allowed is not None:  # applies to updates from now on
                self._allowed_updates = (
                    frozenset(allowed) if allowed else UPDATE_TYPES - NOT_SENT_UNLESS_ASKED
                )
            if offset > 0:  # confirms every update before it
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:  # the last -offset updates; the earlier ones are forgotten
                self._updates = self._updates[offset:]
            while not self._updates and self._polls == mine:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            if self._polls != mine:
                raise TelegramError(HTTPStatus.CONFLICT, CONFLICT)
            return self._updates[:limit]

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            if self._limits:
                retry_after = self._limits.pop(0)
                raise TelegramError(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )
        chat_id = chat_id_param(params)
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise bad_request("message text is empty")
        parse_mode = params.get("parse_mode") or None
        plain_text = plain_text_of(text, parse_mode)
        if not plain_text.strip():
            raise bad_request("message text is empty")
        if len(plain_text) > MAX_TEXT_CHARACTERS:
            raise bad_request("message is too long")
        reply_markup = json_param(params, "reply_markup")
        if reply_markup is not None:
            check_reply_markup(reply_markup)
        preview = json_param(params, "link_preview_options") or {}
        preview_disabled = bool(
            preview.get("is_disabled") or boolean_param(params, "disable_web_page_preview")
        )
        with self._changed:
            chat = self._chats.get(chat_id)
            if chat is None:
                raise bad_request("chat not found")
            if chat_id in self._blocked:
                raise TelegramError(HTTPStatus.FORBIDDEN, "Forbidden: bot was blocked by the user")
            message_id = self._next_message_id(chat_id)
            self._sent.append(
                SentMessage(
                    chat_id,
                    message_id,
                    text,
                    plain_text,
                    parse_mode,
                    reply_markup,
                    preview_disabled,
                    time.monotonic(),
                )
            )
            self._changed.notify_all()
        result = {
            "message_id": message_id,
            "from": {key: self.bot[key] for key in ("id", "is_bot", "first_name", "username")},
            "chat": chat,
            "date": int(time.time()),
            "text": plain_text,
        }
        if reply_markup and "inline_keyboard" in reply_markup:
            result["reply_markup"] = {"inline_keyboard": reply_markup["inline_keyboard"]}
        return result

    # --- helpers, called with the lock held --------------------------------------------------

    def _queue(self, kind: str, content: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: content}
        if kind in self._allowed_updates:
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def _next_message_id(self, chat_id: int) -> int:
        # In a private chat, the user's messages and the bot's share one sequence.
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _membership(self, chat_id: int, old: str, new: str) -> dict[str, Any]:
        bot = {key: self.bot[key] for key in ("id", "is_bot", "first_name", "username")}
        return {
            "chat": self._chats[chat_id],
            "from": self._users[chat_id],
            "date": int(time.time()),
            "old_chat_member": {"user": bot, "status": old},
            "new_chat_member": {"user": bot, "status": new}
            | ({"until_date": 0} if new == "kicked" else {}),
        }


# --- parameters, as Telegram reads them from a query string, a form or JSON ----------------


def json_param(params: dict[str, Any], name: str) -> Any:
    """An object parameter: JSON in a JSON body, a JSON-serialized string in a form."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    return value


def integer_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f'field "{name}" must be of type Integer') from None


def boolean_param(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    return value.lower() in ("true", "1") if isinstance(value, str) else bool(value)


def chat_id_param(params: dict[str, Any]) -> int:
    value = params.get("chat_id")
    if value in (None, ""):
        raise bad_request("chat_id is empty")
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value)):
        return int(value)
    raise bad_request("chat not found")  # an @username of a chat this bot is not in


def utf16_length(text: str) -> int:
    """Telegram counts entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --- formatting, checked as Telegram checks it ---------------------------------------------


def plain_text_of(text: str, parse_mode: str | None) -> str:
    if parse_mode is None:
        return text
    if parse_mode.lower() == "html":
        return html_to_plain(text)
    if parse_mode.lower() == "markdownv2":
        return markdown_v2_to_plain(text)
    if parse_mode.lower() == "markdown":  # the legacy mode: taken as it is, not checked here
        return text
    raise bad_request("unsupported parse_mode")


def cannot_parse(description: str) -> TelegramError:
    return bad_request(f"can't parse entities: {description}")


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def html_to_plain(text: str) -> str:
    plain, open_tags, index = [], [], 0
    while index < len(text):
        if text[index] == "<":
            offset = byte_offset(text, index)
            # "<" is at index, so this always matches
            closing, name = HTML_TAG_NAME.match(text, index).groups()  # type: ignore[union-attr]
            name = name.lower()
            if not closing and name not in HTML_TAGS:
                raise cannot_parse(f'Unsupported start tag "{name}" at byte offset {offset}')
            end = text.find(">", index)
            if end == -1:
                raise cannot_parse(
                    f"Unclosed {'end' if closing else 'start'} tag at byte offset {offset}"
                )
            attributes = text[index + len(closing) + 1 + len(name) : end]
            if closing:
                if not open_tags:
                    raise cannot_parse(f"Unexpected end tag at byte offset {offset}")
                expected = open_tags.pop()
                if name != expected:
                    raise cannot_parse(
                        f"Unmatched end tag at byte offset {offset}, "
                        f'expected "</{expected}>", found "</{name}>"'
                    )
            elif name == "span" and "tg-spoiler" not in attributes:
                raise cannot_parse('Tag "span" must have class "tg-spoiler"')
            else:
                open_tags.append(name)
            index = end + 1
            continue
        entity = HTML_ENTITY.match(text, index) if text[index] == "&" else None
        if entity and (entity.group(1) or entity.group(2) or entity.group(3) in HTML_ENTITIES):
            decimal, hexadecimal, name = entity.groups()
            if name:
                plain.append(HTML_ENTITIES[name])
            else:
                plain.append(chr(int(decimal) if decimal else int(hexadecimal, 16)))
            index = entity.end()
            continue
        plain.append(text[index])  # a bare "&" or an unknown entity stays as written
        index += 1
    if open_tags:
        raise cannot_parse(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(plain)


def markdown_v2_to_plain(text: str) -> str:
    plain: list[str] = []
    open_entities: list[tuple[str, str, int]] = []  # marker, name, byte offset
    index = 0
    while index < len(text):
        character = text[index]
        if character == "\\":
            if index + 1 < len(text) and 1 <= ord(text[index + 1]) <= 126:
                plain.append(text[index + 1])
                index += 2
                continue
            raise cannot_parse(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if character == "`":
            fence = "```" if text.startswith("```", index) else "`"
            name = "Pre" if fence == "```" else "Code"
            end = closing_position(text, index + len(fence), fence)
            if end is None:
                raise cannot_parse(
                    f"Can't find end of {name} entity at byte offset {byte_offset(text, index)}"
                )
            plain.append(unescaped(text[index + len(fence) : end]))
            index = end + len(fence)
            continue
        style = next((s for s in MARKDOWN_V2_STYLES if text.startswith(s[0], index)), None)
        if style:
            marker, name = style
            if open_entities and open_entities[-1][0] == marker:
                open_entities.pop()
            else:
                open_entities.append((marker, name, byte_offset(text, index)))
            index += len(marker)
            continue
        if character == "[":
            open_entities.append(("[", "TextUrl", byte_offset(text, index)))
            index += 1
            continue
        if character == "]" and open_entities and open_entities[-1][0] == "[":
            end = (
                closing_position(text, index + 2, ")")
                if text[index + 1 : index + 2] == "("
                else None
            )
            if end is None:
                raise cannot_parse(
                    f"Can't find end of a URL at byte offset {byte_offset(text, index)}"
                )
            open_entities.pop()
            index = end + 1
            continue
        if character == ">" and (index == 0 or text[index - 1] == "\n"):  # a blockquote
            index += 1
            continue
        if character in MARKDOWN_V2_RESERVED:
            raise cannot_parse(
                f"Character '{character}' is reserved and must be escaped with the preceding '\\'"
            )
        plain.append(character)
        index += 1
    if open_entities:
        _, name, offset = open_entities[-1]
        raise cannot_parse(f"Can't find end of {name} entity at byte offset {offset}")
    return "".join(plain)


def closing_position(text: str, start: int, closer: str) -> int | None:
    """Where `closer` next appears unescaped from `start`, or None."""
    index = start
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text.startswith(closer, index):
            return index
        else:
            index += 1
    return None


def unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def check_reply_markup(markup: Any) -> None:
    """Inline keyboards are checked; other keyboards pass as they are."""
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    keyboard = markup.get("inline_keyboard")
    if keyboard is None:
        return
    if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for button in (button for row in keyboard for button in row):
        if not isinstance(button, dict):
            raise bad_request(
                "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
            )
        if not isinstance(button.get("text"), str):
            raise bad_request(
                'can\'t parse inline keyboard button: Field "text" must be of type String'
            )
        if not BUTTON_ACTIONS & button.keys():
            raise bad_request(
                "can't parse inline keyboard button: "
                "Text buttons are unallowed in the inline keyboard"
            )
        if "url" in button:
            check_button_url(button["url"])
        if len(str(button.get("callback_data", "")).encode()) > MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")


def check_button_url(url: Any) -> None:
    if not isinstance(url, str):
        raise bad_request('can\'t parse inline keyboard button: Field "url" must be of type String')
    parts = urlsplit(url if "://" in url or url.startswith("tg:") else f"http://{url}")
    if parts.scheme.lower() not in ("http", "https", "tg"):
        raise bad_request(
            f"inline keyboard button URL '{url}' is invalid: Unsupported URL protocol"
        )
    # Telegram wants a host with a dot: http://localhost:8000/... is refused.
    if parts.scheme.lower() != "tg" and "." not in (parts.hostname or ""):
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm on, a kept-alive
    # connection waits for the client's delayed ACK, some 40 ms a request.
    disable_nagle_algorithm = True
    server: LoopbackServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        params: dict[str, Any] = dict(parse_qsl(url.query))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get_content_type()
        try:
            if body and content_type == "application/json":
                params |= json.loads(body)
            elif body and content_type == "application/x-www-form-urlencoded":
                params |= dict(parse_qsl(body.decode()))
        except (ValueError, TypeError):
            status, answer = HTTPStatus.BAD_REQUEST, bad_request("can't parse JSON body").body()
        else:
            status, answer = self.server.fake._answer(url.path, params)
        encoded = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's own output is what matters, and every call is recorded."""
