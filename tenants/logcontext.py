"""Who and what a log line is about, and the two ways lines are written (text and JSON lines).

A request, a WebSocket turn or a Celery task binds its context once (`bind`): the request id,
the tenant, the user or the visitor, the route. Every line logged while it runs carries them,
whatever module logs it, through `ContextFilter` on the handlers. `LOG_FORMAT` chooses how a
line is written: `text` for people (`make run`), `json` for machines (production), one object a
line. Both formatters pass the finished line through `redact()`, so an access token, a provider
key or a signed URL token that slipped into a message or a traceback is never written.

Part of the kernel in `tenants` because every app logs and `tenants` imports no other app.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

# The fields a line may carry from its context, in the order the JSON object lists them.
CONTEXT_FIELDS = ("request_id", "tenant_id", "user_id", "visitor_id", "route")

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("log_context", default=None)

# A client's X-Request-ID is kept when it is short and plain (UUIDs, hex, a proxy's id);
# anything else (too long, spaces, quotes, control characters) is replaced by our own.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is sane, else a new one."""
    if header and _ACCEPTABLE_REQUEST_ID.match(header):
        return header
    return new_request_id()


def current() -> dict[str, str]:
    """The bound context (a copy)."""
    return dict(_context.get() or {})


def bind(**fields) -> contextvars.Token:
    """Add fields to the context of what runs now (None values are left out); returns a token
    for `restore`. Values are kept as strings: ids, never objects."""
    merged = current()
    merged.update({name: str(value) for name, value in fields.items() if value is not None})
    return _context.set(merged)


def restore(token: contextvars.Token) -> None:
    _context.reset(token)


def replace(fields: dict[str, str]) -> contextvars.Token:
    """Start a fresh context (a task, a turn): nothing of the previous one is kept."""
    return _context.set({name: str(value) for name, value in fields.items() if value is not None})


# --- Secrets kept out of every line ------------------------------------------------------------

_REDACTIONS = (
    # JSON Web Tokens (access, refresh, socket and visitor tokens): header.payload.signature.
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[redacted-token]"),
    # Authorization header values, whatever the scheme's token looks like.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    # Provider keys: OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), and a key named as one.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "[redacted-key]"),
    (
        re.compile(
            r"""(?i)((?:api[_-]?key|x-api-key|secret|password|token)["']?\s*[:=]\s*["']?)[^"'\s,&}]{6,}"""
        ),
        r"\1[redacted]",
    ),
)


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# --- Handlers' filter and formatters -----------------------------------------------------------


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (fields a record already has are kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """The human-readable line of `make run`, with the request id when there is one."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id:
            line = line.replace(": ", f" [{request_id}]: ", 1)
        return redact(line)


# The attributes every LogRecord has: what is left over was passed with `extra=`.
_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context, `extra=` fields, and
    the exception's traceback as text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))
