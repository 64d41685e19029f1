"""IMS tokens: issued by POST /ims/token/v3, checked by the gateway in strict mode."""

from __future__ import annotations

import secrets
import time

from upstack.config import Settings
from upstack.services.errors import GatewayError, Invalid
from upstack.storage.db import Database
from upstack.storage.models import ImsToken

TOKEN_SECONDS = 86399


def issue_token(db: Database, settings: Settings, form: dict[str, str]) -> dict:
    if form.get("grant_type", "client_credentials") != "client_credentials":
        raise Invalid("unsupported_grant_type: only client_credentials is supported.")
    client_id = (form.get("client_id") or "").strip()
    secret = form.get("client_secret") or ""
    if not client_id:
        raise Invalid("invalid_request: client_id is required.")
    if settings.auth == "strict":
        known = settings.ims_client_table().get(client_id)
        if known is None or not secrets.compare_digest(known[0], secret):
            raise GatewayError(401, "invalid_client", "invalid client_id or client_secret")
    token = "upstack." + secrets.token_urlsafe(32)
    with db.session() as s:
        s.add(ImsToken(token=token, client_id=client_id, expires_ms=int((time.time() + TOKEN_SECONDS) * 1000)))
    return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS}


class TokenChecker:
    """Strict-mode check, callable from a worker thread: (token, api key, org) -> the gateway error or None."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self._cache: dict[str, tuple[str, int]] = {}

    def __call__(self, token: str, api_key: str, org: str) -> GatewayError | None:
        found = self._cache.get(token)
        if found is None:
            with self.db.session() as s:
                row = s.get(ImsToken, token)
                if row is not None:
                    found = (row.client_id, row.expires_ms)
                    self._cache[token] = found
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
