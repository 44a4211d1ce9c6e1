"""Log lines that follow an order through web, worker and chain.

Every line carries what is in play where it was written: the request id (from the
`X-Request-ID` a proxy set, or made here, and returned in the response), the signed-in
wallet in short form, the order and the transfer, and the Celery task id. A task enqueued
while a request is served carries that request's id and order in its message headers
(kibo.celery), so `grep <request id>` finds the web request, the worker's task and the
chain transaction it sent.

Lines are JSON in production (KIBO_LOG_FORMAT=json) and readable text in development.
Both formatters pass their output through `scrub`: the escrow key and the other secrets of
this process's environment, signatures and cookies never reach a log line, whoever wrote it.
Errors go to Sentry only when SENTRY_DSN is set, scrubbed the same way.
"""

import contextvars
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import sentry_sdk
from pythonjsonlogger.json import JsonFormatter
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

FIELDS = ("request_id", "wallet", "order_id", "transfer_id", "task_id")
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "kibo_log", default=MappingProxyType({})
)

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{8,64}")

# The environment's secrets, by value: whichever of them this process holds.
SECRET_NAMES = (
    "KIBO_ESCROW_PRIVATE_KEY",
    "DJANGO_SECRET_KEY",
    "KIBO_METRICS_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "POSTGRES_PASSWORD",
    "KIBO_VAPID_PRIVATE_KEY",
    "KIBO_TELEGRAM_BOT_TOKEN",
)
# And by shape: an Ethereum signature (65 bytes), a cookie or a bearer token.
SECRET_PATTERNS = (
    (re.compile(r"0x[0-9a-fA-F]{130}\b"), "0x[signature]"),
    (re.compile(r"((?:sessionid|csrftoken)=)[^;\s'\"]+"), r"\1[redacted]"),
    (re.compile(r"(Bearer )[^\s'\"]+"), r"\1[redacted]"),
)


def current() -> dict[str, str]:
    """What is in play now (request, wallet, order, transfer, task)."""
    return dict(_context.get())


def bind(**fields: object) -> contextvars.Token:
    """Add fields to what every line logged from here on carries; `unbind` the token after."""
    added = {name: str(value) for name, value in fields.items() if value is not None}
    return _context.set({**_context.get(), **added})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def request_id(header: str | None) -> str:
    """The proxy's request id when it looks like one; else a new one."""
    if header and REQUEST_ID_RE.fullmatch(header):
        return header
    return uuid.uuid4().hex


def short_wallet(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 10 else address


def _secrets() -> re.Pattern | None:
    """One pattern for the values of this process's secrets (read once per formatter)."""
    values = set()
    for name in SECRET_NAMES:
        value = os.environ.get(name, "").strip()
        if len(value) >= 8:
            values.add(value)
            if value.lower().startswith("0x"):
                values.add(value[2:])
    if not values:
        return None
    longest_first = sorted(values, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, longest_first)), re.IGNORECASE)


READ_NOW = re.compile("")  # scrub's default: the environment's secrets, read at the call


def scrub(text: str, *, secrets: re.Pattern | None = READ_NOW) -> str:
    """The text with every secret of this process's environment (`secrets`: the pattern a
    formatter read once; None: there are none) and every signature, cookie and bearer token
    replaced."""
    pattern = _secrets() if secrets is READ_NOW else secrets
    if pattern is not None:
        text = pattern.sub("[secret]", text)
    for shape, replacement in SECRET_PATTERNS:
        text = shape.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Puts what is in play on each record (a field the call passed itself wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, _context.get().get(name))
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message  request_id=… order_id=…`, for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.converter = time.gmtime
        self.secrets = _secrets()

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(
            f"{name}={value}" for name in FIELDS if (value := getattr(record, name, None))
        )
        return scrub(f"{line}  {fields}" if fields else line, secrets=self.secrets)


class JsonLinesFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, event, and what is in play."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "message": "event"},
            datefmt="%Y-%m-%dT%H:%M:%SZ",
        )
        self.converter = time.gmtime  # UTC, whatever the server's zone
        self.secrets = _secrets()

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in log_data.items() if value is not None}

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), secrets=self.secrets)


def logging_config(*, fmt: str, level: str, quiet: dict[str, str]) -> dict:
    """Django's LOGGING: every line through the context filter and the chosen formatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"text": {"()": TextFormatter}, "json": {"()": JsonLinesFormatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {name: {"level": quiet_level} for name, quiet_level in quiet.items()},
    }


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets=secrets)
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, secrets) for item in value]
    return value


def sentry_start(dsn: str, *, environment: str) -> None:
    """Send errors (and error lines) to Sentry: no request bodies, cookies or local
    variables, every string scrubbed, and what is in play as tags."""
    secrets = _secrets()

    def before_send(event: dict, hint: dict) -> dict:
        request = event.get("request") or {}
        request.pop("cookies", None)
        request.pop("data", None)
        headers = request.get("headers") or {}
        for name in list(headers):
            if name.lower() in ("cookie", "authorization", "x-csrftoken"):
                del headers[name]
        entry = event.get("logentry")
        if entry and entry.get("params"):  # scrub the line as written, not its parts apart
            entry["message"], entry["params"] = entry.get("formatted") or entry["message"], []
        event.setdefault("tags", {}).update(current())
        return _scrubbed(event, secrets)

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=before_send,
        # gzip, as the image has it: brotli is only sometimes installed alongside
        _experiments={"transport_compression_algo": "gzip"},
    )
