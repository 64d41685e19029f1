"""IMS tokens: issued by POST /ims/token/v3, checked by the gateway in strict mode."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from upstack.config import Settings
from upstack.services.errors import GatewayError, Invalid
from upstack.storage import ims_repo
from upstack.storage.db import Database

TOKEN_SECONDS = 86399
FORM_FIELDS = ("grant_type", "client_id", "client_secret", "scope")
MAX_CLIENT_ID = 255  # the ims_tokens.client_id column
# Tokens one process remembers (least recently used go first): memory stays bounded whatever tokens clients send.
TOKEN_CACHE_SIZE = 10_000
# A remembered token is read again after this long, so a token deleted (or expired early) by any process stops
# working everywhere within it. One point read per token per interval costs nothing next to the requests it serves.
TOKEN_RECHECK_SECONDS = 1.0


def issue_token(db: Database, settings: Settings, form: dict[str, str]) -> dict:
    for field in FORM_FIELDS:
        # NUL never belongs in these; PostgreSQL could not even store a client id holding one.
        if "\x00" in form.get(field, ""):
            raise Invalid(f"invalid_request: {field} must not contain NUL characters.")
    if form.get("grant_type", "client_credentials") != "client_credentials":
        raise Invalid("unsupported_grant_type: only client_credentials is supported.")
    client_id = (form.get("client_id") or "").strip()
    secret = form.get("client_secret") or ""
    if not client_id:
        raise Invalid("invalid_request: client_id is required.")
    if len(client_id) > MAX_CLIENT_ID:
        raise Invalid(f"invalid_request: client_id is longer than {MAX_CLIENT_ID} characters.")
    if settings.auth == "strict":
        known = settings.ims_client_table().get(client_id)
        if known is None or not secrets.compare_digest(known[0], secret):
            raise GatewayError(401, "invalid_client", "invalid client_id or client_secret")
    token = "upstack." + secrets.token_urlsafe(32)
    with db.session() as s:
        ims_repo.add_token(s, token, client_id, int((time.time() + TOKEN_SECONDS) * 1000))
    return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS}


class TokenChecker:
    """Strict-mode check, callable from worker threads: (token, api key, org) -> the gateway error or None.

    Known tokens are cached (an LRU of `max_size`) and read again once `recheck_seconds` have passed, so a
    token deleted from the database stops working within that time in every process, and at once in this one
    after `forget_all()` (the local reset calls it). Unknown tokens are never cached: one issued a moment ago by
    another process is found on its first use."""

    def __init__(self, db: Database, settings: Settings, *, max_size: int | None = None,
                 recheck_seconds: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.settings = settings
        self.max_size = TOKEN_CACHE_SIZE if max_size is None else max_size
        self.recheck_seconds = TOKEN_RECHECK_SECONDS if recheck_seconds is None else recheck_seconds
        self.clock = clock
        self._cache: OrderedDict[str, tuple[str, int, float]] = OrderedDict()  # token -> (client, expires, read at)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def forget_all(self) -> None:
        with self._lock:
            self._cache.clear()

    def _lookup(self, token: str) -> tuple[str, int] | None:
        """(client id, expiry in epoch ms) of a token this server issued, or None."""
        now = self.clock()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None and now - hit[2] < self.recheck_seconds:
                self._cache.move_to_end(token)
                return hit[0], hit[1]
        with self.db.read_session() as s:  # a read: never waits for (or takes) SQLite's write lock
            row = ims_repo.get_token(s, token)
            found = (row.client_id, row.expires_ms) if row is not None else None
        with self._lock:
            if found is None:
                self._cache.pop(token, None)
                return None
            self._cache[token] = (*found, now)
            self._cache.move_to_end(token)
            while len(self._cache) > self.max_size:
                self._cache.popitem(last=False)
        return found

    def __call__(self, token: str, api_key: str, org: str) -> GatewayError | None:
        found = self._lookup(token)
        if found is None or found[1] < time.time() * 1000:
            return GatewayError(401, "401013", "Oauth token is not valid")
        if not api_key:
            return GatewayError(403, "403000", "Api Key is required")
        client_id = found[0]
        if api_key != client_id:
            return GatewayError(403, "403003", "Api Key is invalid")
        orgs = self.settings.ims_client_table().get(client_id, ("", frozenset()))[1]
        if org and "*" not in orgs and org not in orgs:
            return GatewayError(403, "403003", "Api Key is invalid")
        return None
