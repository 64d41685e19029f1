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
- An event is a short constant message; its values are fields (`extra={...}` on a stdlib logger): JSON lines
  carry them typed, the console prints them as key=value after the message. A record also carries what its
  caller's context bound: `request_id` and `tenant` inside a request (`bind_request`), `job_id`, `kind` and
  `tenant` inside a worker's job (structlog's contextvars). No ANSI escapes but the console renderer's own,
  and those only on a terminal.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import logging.handlers
import os
import queue
import re
import sys
import time
import traceback
from collections import deque
from typing import Any

import orjson
import structlog
import structlog.contextvars

MAX_TRACEBACK_LINES = 60
MAX_LINE_CHARS = 2_000
QUEUE_RECORDS = 10_000
ACCESS_FLUSH_SECONDS = 0.1
ACCESS_LINES = 50_000  # lines waiting for the log thread at most; the oldest go first past it
ACCESS_SLICE = 128  # lines the log thread renders while holding the GIL, before it lets the event loop run
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
        if "\x1b" in value:  # a terminal escape in logged data (an error quoting a client's text) is shown, not run
            value = value.replace("\x1b", "\\x1b")
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


def tenant_text(tenant) -> str | None:
    """The `tenant` field, as access lines show it: `org/sandbox`."""
    return f"{tenant.org}/{tenant.sandbox}" if tenant is not None else None


# The request being served (the gateway's per-request `state` dict: `request_id`, later `tenant`), for records
# logged inside it. One ContextVar set per request (~0.1 us): structlog's bind_contextvars costs 7x more.
_REQUEST: contextvars.ContextVar[dict | None] = contextvars.ContextVar("upstack_request", default=None)


def bind_request(state: dict) -> contextvars.Token:
    """Records logged inside this request carry its `request_id` and (once known) `tenant`; `unbind_request`
    with the token when it ends."""
    return _REQUEST.set(state)


def unbind_request(token: contextvars.Token) -> None:
    _REQUEST.reset(token)


ACCESS_LOGGER = "upstack.access"


_ACCESS_LINE = "%s.%06dZ [info     ] %s %s %s %.1fms [" + ACCESS_LOGGER + "] request_id=%s"


class _AccessRenderer:
    """Renders access lines in structlog's layout, directly: there is one per request, and structlog's processor
    chain costs ~20x more. Runs on the log thread, from what `access` queued; one %-format per line."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self._second, self._prefix = -1, ""

    def __call__(self, ended: float, began: float, method: str, path: str, status: int | str, request_id: str,
                 tenant) -> str:
        created = _EPOCH_OFFSET + ended
        second = int(created)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        if not path.isprintable():  # escaped, so that no request can forge a log line
            path = path.encode("unicode_escape").decode("ascii")
        if len(path) > 2000:
            path = path[:2000]
        lowered = path.lower()  # a client's path is the only free text here; a regex test costs 10x more
        if "bearer" in lowered or "secret" in lowered or "token" in lowered or "key" in lowered or \
                "password" in lowered or "upstack." in lowered:
            path = redact(path)
        tenant = f"{tenant.org}/{tenant.sandbox}" if tenant is not None else None
        if self.as_json:  # the values as fields; `status` is null when no answer started
            return orjson.dumps({"event": "request", "request_id": request_id, "tenant": tenant, "method": method,
                                 "path": path, "status": status if status != "-" else None,
                                 "duration_ms": round((ended - began) * 1000, 3),
                                 "logger": ACCESS_LOGGER, "level": "info",
                                 "timestamp": f"{self._prefix}.{int((created - second) * 1e6):06d}Z"}).decode()
        line = _ACCESS_LINE % (self._prefix, (created - second) * 1e6, method, path, status, (ended - began) * 1000,
                               request_id)
        return line + " tenant=" + tenant if tenant else line


# time.time() - time.perf_counter(): a perf_counter reading as wall-clock time, for the lines' timestamps.
_EPOCH_OFFSET = time.time() - time.perf_counter()


class _BatchedStreamHandler(logging.StreamHandler):
    """Writes without a flush per line; the listener flushes whenever the queue runs empty, so a burst of lines
    costs one write system call instead of one each."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self.stream, "closed", False):  # closed by its owner (a test's captured stream): nowhere to write
            return
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:  # noqa: BLE001 - logging must never raise into the server
            self.handleError(record)

    def flush(self) -> None:
        try:
            super().flush()
        except (OSError, ValueError):  # the stream went away (closed by its owner): nothing left to write to
            pass


class _Listener(logging.handlers.QueueListener):
    """The log thread: records from the queue one by one, access lines (rendered already) in batches from their
    deque (drained at least every `ACCESS_FLUSH_SECONDS`), one write for each batch."""

    def __init__(self, records: queue.Queue, handler: _BatchedStreamHandler, render_access: _AccessRenderer):
        super().__init__(records, handler, respect_handler_level=False)
        self.access_lines: deque[tuple] = deque(maxlen=ACCESS_LINES)  # what `access` queued, to render
        self.render_access = render_access

    def dequeue(self, block: bool):
        while True:
            self._write_access_lines()
            try:
                return self.queue.get(timeout=ACCESS_FLUSH_SECONDS)
            except queue.Empty:
                self._write_access_lines()
                for handler in self.handlers:
                    handler.flush()

    def enqueue_sentinel(self) -> None:
        self.queue.put(self._sentinel)  # blocking: the thread is draining, a full queue must not lose the stop

    def _write_access_lines(self) -> None:
        """Render what `access` queued and write it, `ACCESS_SLICE` lines at a time: each slice holds the GIL for
        well under a millisecond, and its write (or a zero sleep) gives it back to the event loop. Rendering a
        whole batch at once held the GIL for milliseconds and doubled the requests' p99; rendering on the event
        loop cost each request ~10 us (the same work in a tight loop here costs a third of that)."""
        lines, render = self.access_lines, self.render_access
        stream = self.handlers[0].stream
        while lines:
            rendered = []
            for _ in range(ACCESS_SLICE):
                try:
                    rendered.append(render(*lines.popleft()))
                except IndexError:
                    break
            try:
                stream.write("\n".join(rendered) + "\n")
            except Exception:  # noqa: BLE001 - logging must never raise
                return
            time.sleep(0)


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Enqueue the record as it is (formatting happens on the listener thread); drop it when the queue is full."""

    dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Resolve the message now (its arguments may change later) but leave exc_info for the listener.
        # structlog's own records carry their event dict as msg (and their context merged): those stay as they
        # are. Others take the caller's context now, as extra fields (the listener thread has none): what the
        # call passed in `extra` wins.
        if not isinstance(record.msg, dict):
            record.msg = record.getMessage()
            record.args = None
            fields = record.__dict__
            request = _REQUEST.get()
            if request is not None:
                if "request_id" not in fields:
                    fields["request_id"] = request.get("request_id")
                if "tenant" not in fields and request.get("tenant") is not None:
                    fields["tenant"] = tenant_text(request["tenant"])
            for key, value in structlog.contextvars.get_contextvars().items():
                fields.setdefault(key, value)
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


_listener: logging.handlers.QueueListener | None = None
_access_lines: deque | None = None


def access(method: str, path: str, status: int | str, began: float, request_id: str, tenant) -> None:
    """One access line per request (CONTRACT §10). Off when logs are above INFO or not set up (tests in process).

    The request path only queues the values (a deque append: thread-safe, and the oldest go first if the log
    thread falls behind); the log thread renders and writes them (`_Listener._write_access_lines`)."""
    lines = _access_lines
    if lines is not None:
        lines.append((time.perf_counter(), began, method, path, status, request_id, tenant))


def setup(level: str = "INFO", as_json: bool = False, stream=None) -> None:
    global _listener, _access_lines
    shared = [
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    stream = stream or sys.stderr
    renderer = (structlog.processors.JSONRenderer() if as_json
                else structlog.dev.ConsoleRenderer(colors=_is_terminal(stream),
                                                   exception_formatter=structlog.dev.plain_traceback))
    handler = _BatchedStreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _drop_ansi, exception_fields,
                    redact_event, renderer],
        # The caller's context is on the record already (`_DroppingQueueHandler.prepare`): ExtraAdder takes it
        # with the call's own fields. merge_contextvars here would read the log thread's context, which is empty.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
    ))
    if _listener is not None:
        _listener.stop()
    records: queue.Queue = queue.Queue(QUEUE_RECORDS)
    _listener = _Listener(records, handler, _AccessRenderer(as_json))
    _listener.start()
    _access_lines = _listener.access_lines if logging.getLevelName(level.upper()) <= logging.INFO else None
    root = logging.getLogger()
    root.handlers[:] = [_DroppingQueueHandler(records)]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, *shared,
                                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                        logger_factory=structlog.stdlib.LoggerFactory(), cache_logger_on_first_use=True)


def _is_terminal(stream) -> bool:
    """Colours only for a person at a terminal: never into a file, a pipe or a container's log, nor with NO_COLOR."""
    try:
        return bool(stream.isatty()) and not os.environ.get("NO_COLOR")
    except (AttributeError, ValueError):
        return False


def flush() -> None:
    """Write out every queued record (at exit, and in tests that read the log)."""
    if _listener is not None:
        _listener.stop()
        _listener.start()


atexit.register(lambda: _listener.stop() if _listener is not None else None)
