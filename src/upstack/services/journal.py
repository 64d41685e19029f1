"""The request journal (CONTRACT §10): every AEP request this process answered, kept in memory within bounds, so
a test can list, filter, count and clear what its client sent, as WireMock's `/__admin/requests` allows."""

from __future__ import annotations

import fnmatch
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from upstack.services.errors import Invalid

# Request headers whose values never reach the journal (nor its answers).
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization", "x-upstack-admin-token"})
REDACTED = "[redacted]"
ENTRY_OVERHEAD_BYTES = 1024  # what an entry costs besides its body, roughly: counts towards max_bytes
MAX_PAGE = 1000


@dataclass
class Entry:
    """One request as the server saw it. Mutable until its answer is complete (status first, then duration)."""

    id: int
    request_id: str
    logged_ms: int
    method: str
    path: str
    query: str
    org: str | None
    sandbox: str | None
    headers: dict[str, str]
    content_type: str
    body: bytes = b""
    body_size: int = 0
    body_truncated: bool = False
    status: int | None = None
    duration_ms: float | None = None
    warnings: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "requestId": self.request_id, "loggedDate": self.logged_ms, "method": self.method,
                "path": self.path, "query": self.query, "tenant": {"org": self.org, "sandbox": self.sandbox}
                if self.org is not None else None, "headers": self.headers, "body": self._body_view(),
                "bodySize": self.body_size, "bodyTruncated": self.body_truncated, "status": self.status,
                "durationMs": self.duration_ms, "warnings": self.warnings}

    def _body_view(self) -> Any:
        """JSON bodies as JSON, text as text; binary (uploads) is only counted."""
        if not self.body:
            return None
        ctype = self.content_type
        if not self.body_truncated and (not ctype or ctype == "application/json" or ctype.endswith("+json")
                                        or ctype == "text/plain"):
            try:
                return orjson.loads(self.body)
            except orjson.JSONDecodeError:
                pass
        if ctype.startswith("application/octet-stream"):
            return None
        return self.body.decode("utf-8", "replace")


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: REDACTED if k in SECRET_HEADERS else v for k, v in headers.items()}


@dataclass(frozen=True)
class Query:
    """Filters of `GET /_upstack/requests`: each one given narrows the answer."""

    method: str | None = None
    path: str | None = None  # a glob, e.g. /data/core/ups/export/jobs*
    org: str | None = None
    sandbox: str | None = None
    status: str | None = None  # 503, or a class: 5xx
    since_ms: int | None = None
    after_id: int | None = None

    def matches(self, e: Entry) -> bool:
        if self.after_id is not None and e.id <= self.after_id:
            return False
        if self.since_ms is not None and e.logged_ms < self.since_ms:
            return False
        if self.method and e.method != self.method.upper():
            return False
        if self.path and not fnmatch.fnmatchcase(e.path.rstrip("/") or "/", self.path.rstrip("/") or "/"):
            return False
        if self.org and e.org != self.org:
            return False
        if self.sandbox and e.sandbox != self.sandbox:
            return False
        if self.status:
            code = e.status or 0
            if self.status.endswith("xx"):
                return str(code)[:1] == self.status[:1]
            return str(code) == self.status
        return True


def parse_query(params) -> tuple[Query, int]:
    """A `Query` and the page size from query parameters; malformed values are 400."""
    def integer(name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 19:
            raise Invalid(f"Query parameter '{name}' must be an integer, got '{raw[:50]}'.")
        return int(raw)

    status = params.get("status") or None
    if status is not None and not (len(status) == 3 and status.isascii()
                                   and (status.isdigit() or (status[0] in "12345" and status[1:] == "xx"))):
        raise Invalid("Query parameter 'status' must be a status code (503) or a class (5xx).")
    limit = integer("limit")
    limit = 100 if limit is None else max(1, min(limit, MAX_PAGE))
    return Query(method=params.get("method") or None, path=params.get("path") or params.get("urlPattern") or None,
                 org=params.get("org") or None, sandbox=params.get("sandbox") or None, status=status,
                 since_ms=integer("since"), after_id=integer("after")), limit


class Journal:
    """A bounded, thread-safe ring of entries: the oldest go first when `max_requests` or `max_bytes` is reached.
    Appending is cheap (the request path pays for a deque append); filtering happens when a test asks."""

    def __init__(self, max_requests: int, max_body_bytes: int, max_bytes: int):
        self.max_requests, self.max_body_bytes, self.max_bytes = max_requests, max_body_bytes, max_bytes
        self._entries: deque[Entry] = deque()
        self._bytes = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_requests > 0

    def open(self, request_id: str, method: str, path: str, query: str, headers: dict[str, str]) -> Entry:
        return Entry(id=0, request_id=request_id, logged_ms=int(time.time() * 1000), method=method, path=path,
                     query=query, org=None, sandbox=None, headers=redact_headers(headers),
                     content_type=headers.get("content-type", "").split(";")[0].strip().lower())

    def add(self, entry: Entry) -> None:
        """Make the entry visible (called when its answer starts, before the client can see it)."""
        cost = ENTRY_OVERHEAD_BYTES + len(entry.body)
        with self._lock:
            entry.id = next(self._ids)
            self._entries.append(entry)
            self._bytes += cost
            while self._entries and (len(self._entries) > self.max_requests or self._bytes > self.max_bytes):
                old = self._entries.popleft()
                self._bytes -= ENTRY_OVERHEAD_BYTES + len(old.body)

    def find(self, q: Query, limit: int) -> tuple[list[Entry], bool]:
        """Matching entries in the order they arrived, at most `limit`; and whether more follow."""
        with self._lock:
            snapshot = list(self._entries)
        found = []
        for e in snapshot:
            if q.matches(e):
                if len(found) == limit:
                    return found, True
                found.append(e)
        return found, False

    def count(self, q: Query) -> int:
        with self._lock:
            snapshot = list(self._entries)
        return sum(1 for e in snapshot if q.matches(e))

    def clear(self, q: Query) -> int:
        with self._lock:
            kept = deque(e for e in self._entries if not q.matches(e))
            removed = len(self._entries) - len(kept)
            self._entries = kept
            self._bytes = sum(ENTRY_OVERHEAD_BYTES + len(e.body) for e in kept)
        return removed
