"""The request journal (CONTRACT §10): every AEP request this process answered, kept in memory within bounds, so
a test can list, filter, count and clear what its client sent, as WireMock's `/__admin/requests` allows."""

from __future__ import annotations

import fnmatch
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from upstack.services.errors import Invalid

# Request headers whose values never reach the journal (nor its answers).
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization", "x-upstack-admin-token"})
REDACTED = "[redacted]"
ENTRY_OVERHEAD_BYTES = 1024  # what an entry costs besides its body, roughly: counts towards max_bytes
MAX_PAGE = 1000


@dataclass(slots=True)
class BodyCopy:
    """What a request's body brought, as the gateway copies it for the journal (up to the journal's bound)."""

    content_type: str
    body: bytes = b""
    body_size: int = 0
    body_truncated: bool = False


class Record(NamedTuple):
    """A journaled request, frozen when its answer starts. The journal holds each as one plain tuple of immutable
    scalars and tuples of bytes, which CPython's collector stops tracking within its first passes (it untracks
    exact tuples only, not NamedTuples): journaling adds nothing that survives into the older generations, so it
    costs no longer garbage-collection pauses. Held as objects with lists, every full collection walked them and
    the requests' p99 tripled. Times are kept as the perf_counter readings taken anyway (arrival, answer): the
    request path does no arithmetic or formatting for the journal; `view` does it when a test reads."""

    id: int
    request_id: str
    began: float  # perf_counter at arrival
    answered: float  # perf_counter when the answer started
    method: str
    path: str
    query: bytes
    headers: tuple[tuple[bytes, bytes], ...]  # as received
    org: str | None
    sandbox: str | None
    content_type: str
    body: bytes
    body_size: int
    body_truncated: bool
    status: int
    warning: str = ""  # x-upstack-warning of the answer (api/bodies.py: members a typed body ignored)

    @property
    def logged_ms(self) -> int:
        return int((_EPOCH_OFFSET + self.began) * 1000)

    @property
    def duration_ms(self) -> float:  # until the answer started
        return round((self.answered - self.began) * 1000, 3)


# time.time() - time.perf_counter(): turns a perf_counter reading into a wall-clock one (drift over a test
# session's hours is far below the millisecond the journal shows).
_EPOCH_OFFSET = time.time() - time.perf_counter()
_BODY = Record._fields.index("body")
_NO_BODY = BodyCopy("")


def view(r: Record) -> dict[str, Any]:
    return {"id": r.id, "requestId": r.request_id, "loggedDate": r.logged_ms, "method": r.method, "path": r.path,
            "query": r.query.decode("latin-1"), "tenant": {"org": r.org, "sandbox": r.sandbox} if r.org is not None else None,
            "headers": redact_headers({k.decode("latin-1").lower(): v.decode("latin-1") for k, v in r.headers}),
            "body": _body_view(r), "bodySize": r.body_size, "bodyTruncated": r.body_truncated, "status": r.status,
            "durationMs": r.duration_ms, **({"warning": r.warning} if r.warning else {})}


def _body_view(r: Record) -> Any:
    """JSON bodies as JSON, text as text; binary (uploads) is only counted."""
    if not r.body:
        return None
    ctype = r.content_type
    if not r.body_truncated and (not ctype or ctype == "application/json" or ctype.endswith("+json")
                                 or ctype == "text/plain"):
        try:
            return orjson.loads(r.body)
        except orjson.JSONDecodeError:
            pass
    if ctype.startswith("application/octet-stream"):
        return None
    return r.body.decode("utf-8", "replace")


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

    def matches(self, e: Record) -> bool:
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
        self._entries: deque[tuple] = deque()  # Record fields, as exact tuples (see Record)
        self._bytes = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_requests > 0

    def record(self, request_id: str, began: float, method: str, path: str, query: bytes, raw_headers: list,
               tenant, headers: dict[str, str], copy: BodyCopy | None, status: int, warning: str = "") -> None:
        """Journal a request as its answer starts (`began`: its perf_counter at arrival). Called on the event
        loop for every AEP request, so it only copies references: the rest happens when a test reads."""
        answered = time.perf_counter()
        if tenant is not None:
            org, sandbox = tenant.org, tenant.sandbox
        else:  # refused before its tenant was known: what it said it was, for the filters
            org = headers.get("x-gw-ims-org-id", "").strip() or None
            sandbox = (headers.get("x-sandbox-name", "").strip() or "prod") if org else None
        if copy is None:
            copy = _NO_BODY
        with self._lock:
            self._entries.append((next(self._ids), request_id, began, answered, method, path, query,
                                  tuple(raw_headers), org, sandbox, copy.content_type, copy.body, copy.body_size,
                                  copy.body_truncated, status, warning))
            self._bytes += ENTRY_OVERHEAD_BYTES + len(copy.body)
            while len(self._entries) > self.max_requests or self._bytes > self.max_bytes:
                self._bytes -= ENTRY_OVERHEAD_BYTES + len(self._entries.popleft()[_BODY])

    def _snapshot(self) -> list[Record]:
        with self._lock:
            return [Record._make(t) for t in self._entries]

    def find(self, q: Query, limit: int) -> tuple[list[Record], bool]:
        """Matching entries in the order they arrived, at most `limit`; and whether more follow."""
        found = []
        for e in self._snapshot():
            if q.matches(e):
                if len(found) == limit:
                    return found, True
                found.append(e)
        return found, False

    def latest(self, q: Query, limit: int) -> list[Record]:
        """The newest matching entries, newest first, at most `limit` (the console's page)."""
        found = []
        for e in reversed(self._snapshot()):
            if q.matches(e):
                found.append(e)
                if len(found) == limit:
                    break
        return found

    def count(self, q: Query) -> int:
        return sum(1 for e in self._snapshot() if q.matches(e))

    def clear(self, q: Query) -> int:
        with self._lock:
            kept = deque(t for t in self._entries if not q.matches(Record._make(t)))
            removed = len(self._entries) - len(kept)
            self._entries = kept
            self._bytes = sum(ENTRY_OVERHEAD_BYTES + len(t[_BODY]) for t in kept)
        return removed
