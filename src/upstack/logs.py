"""Logging setup: stdlib loggers rendered by structlog as console lines or JSON, off the caller's thread,
with secrets redacted and tracebacks bounded.

Why each piece (CONTRACT §12):
- A log call only puts the record on a bounded queue; a listener thread formats and writes it. Formatting a
  traceback or writing to a slow terminal never runs on the event loop, and a flood of records is dropped
  (and counted) instead of blocking requests.
- Tracebacks are rendered without local variables (rich's renderer with locals once took minutes for one
  deep request and copied bearer tokens into the log) and cut to `MAX_TRACEBACK_LINES`.
- Every rendered string goes through `redact`: bearer tokens, API keys, client secrets and tokens issued by
  this server never reach the log, whatever logged them.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
import traceback
from typing import Any

import structlog

MAX_TRACEBACK_LINES = 60
MAX_LINE_CHARS = 2_000
QUEUE_RECORDS = 10_000
REDACTED = "[redacted]"

# Keys whose values are secrets wherever they appear (event dict keys, header names, form fields, JSON members).
SECRET_KEYS = ("authorization", "x-api-key", "api_key", "apikey", "client_secret", "access_token", "token",
               "admin_token", "password", "secret")
_SECRET_KEY_SET = frozenset(SECRET_KEYS)
_PATTERNS = [
    # "Bearer abc.def" in any header dump or message.
    (re.compile(r"(?i)\b(bearer)\s+[^\s'\",;]+"), r"\1 " + REDACTED),
    # key=value, key: value, 'key': 'value', "key": "value" for every secret key.
    (re.compile(r"(?i)([\"']?(?:" + "|".join(re.escape(k) for k in SECRET_KEYS) + r")[\"']?\s*[=:]\s*)"
                r"(\"[^\"]*\"|'[^']*'|[^\s&,;)}\]]+)"), r"\1" + REDACTED),
    # Tokens this server issues (services/ims.py) are recognisable on their own.
    (re.compile(r"\bupstack\.[A-Za-z0-9_-]{16,}"), REDACTED),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in _SECRET_KEY_SET:
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v) for v in value]
    return value


def redact_event(_logger, _name, event: dict) -> dict:
    return {k: _redact_value(k, v) for k, v in event.items()}


def format_exception(exc_info) -> str:
    """A traceback without local variables, at most MAX_TRACEBACK_LINES lines (the first and the last
    frames: where the request entered and where it failed)."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    lines = "".join(traceback.format_exception(*exc_info, limit=50)).splitlines()
    if len(lines) > MAX_TRACEBACK_LINES:
        head, tail = MAX_TRACEBACK_LINES // 3, MAX_TRACEBACK_LINES - MAX_TRACEBACK_LINES // 3
        lines = lines[:head] + [f"  ... {len(lines) - head - tail} lines left out ..."] + lines[-tail:]
    return "\n".join(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…" for line in lines)


def exception_fields(_logger, _name, event: dict) -> dict:
    """exc_info -> `exception` (bounded text) plus `exc_type`, so JSON logs carry the failure as fields."""
    exc_info = event.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if exc_info[0] is not None:
            event["exc_type"] = exc_info[0].__name__
            event["exception"] = format_exception(exc_info)
    return event


def _drop_ansi(_logger, _name, event: dict) -> dict:
    event.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
    return event


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Enqueue the record as it is (formatting happens on the listener thread); drop it when the queue is full."""

    dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Resolve the message now (its arguments may change later) but leave exc_info for the listener.
        # structlog's own records carry their event dict as msg: those stay as they are.
        if not isinstance(record.msg, dict):
            record.msg = record.getMessage()
            record.args = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


_listener: logging.handlers.QueueListener | None = None


def setup(level: str = "INFO", as_json: bool = False, stream=None) -> None:
    global _listener
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (structlog.processors.JSONRenderer() if as_json
                else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _drop_ansi, exception_fields,
                    redact_event, renderer],
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
    ))
    if _listener is not None:
        _listener.stop()
    records: queue.Queue = queue.Queue(QUEUE_RECORDS)
    _listener = logging.handlers.QueueListener(records, handler, respect_handler_level=False)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [_DroppingQueueHandler(records)]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                        logger_factory=structlog.stdlib.LoggerFactory(), cache_logger_on_first_use=True)


def flush() -> None:
    """Write out every queued record (at exit, and in tests that read the log)."""
    if _listener is not None:
        _listener.stop()
        _listener.start()


atexit.register(lambda: _listener.stop() if _listener is not None else None)
