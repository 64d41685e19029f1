"""Strict mode's token cache: bounded, and a token deleted (or expired early) in the database stops working: at once
in this process after the local reset, within the recheck interval in any process."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, update

from tests.conftest import HEADERS
from upstack.api.app import create_app
from upstack.services import ims
from upstack.storage.models import ImsToken

PATH = "/data/foundation/catalog/dataSets"
CLIENT = {"grant_type": "client_credentials", "client_id": "my-client", "client_secret": "s3cret"}


@pytest.fixture
def strict(ctx):
    ctx.settings.auth = "strict"
    ctx.settings.ims_clients = "my-client:s3cret:TESTORG@AdobeOrg"
    ctx.settings.admin_token = SecretStr("adm1n")  # strict mode guards the local controls with it
    return ctx


def _token(c) -> dict:
    r = c.post("/ims/token/v3", data=CLIENT)
    assert r.status_code == 200, r.text
    return dict(HEADERS, Authorization=f"Bearer {r.json()['access_token']}", **{"x-api-key": "my-client"})


def _invalid(r) -> bool:
    return r.status_code == 401 and r.json() == {"error_code": "401013", "message": "Oauth token is not valid"}


def test_deleted_token_stops_working_at_reset(strict):
    with TestClient(create_app(strict.settings, strict)) as c:
        good, other = _token(c), _token(c)
        assert c.get(PATH, headers=good).status_code == 200  # now cached
        with strict.db.session() as s:
            s.execute(delete(ImsToken).where(ImsToken.token == good["Authorization"].split()[1]))
        assert c.post("/_upstack/reset", json={"org": "SOMEONE@AdobeOrg"},
                      headers={"Authorization": "Bearer adm1n"}).status_code == 200
        assert _invalid(c.get(PATH, headers=good))
        assert c.get(PATH, headers=other).status_code == 200  # the others are read again, and still good


def test_deleted_or_expired_token_stops_working_within_the_recheck_interval(strict, monkeypatch):
    """Another process deletes or expires the row: no reset reaches this one, the recheck does."""
    monkeypatch.setattr(ims, "TOKEN_RECHECK_SECONDS", 0.2, raising=False)
    with TestClient(create_app(strict.settings, strict)) as c:
        deleted, expired = _token(c), _token(c)
        assert c.get(PATH, headers=deleted).status_code == 200 and c.get(PATH, headers=expired).status_code == 200
        with strict.db.session() as s:
            s.execute(delete(ImsToken).where(ImsToken.token == deleted["Authorization"].split()[1]))
            s.execute(update(ImsToken).where(ImsToken.token == expired["Authorization"].split()[1])
                      .values(expires_ms=int(time.time() * 1000) - 1))
        time.sleep(0.3)
        assert _invalid(c.get(PATH, headers=deleted)) and _invalid(c.get(PATH, headers=expired))


def test_cache_is_a_bounded_lru(strict):
    now = [0.0]
    checker = ims.TokenChecker(strict.db, strict.settings, max_size=2, recheck_seconds=60, clock=lambda: now[0])
    tokens = [ims.issue_token(strict.db, strict.settings, CLIENT)["access_token"] for _ in range(3)]
    org = HEADERS["x-gw-ims-org-id"]
    assert checker(tokens[0], "my-client", org) is None and checker(tokens[1], "my-client", org) is None
    assert checker(tokens[0], "my-client", org) is None  # 0 is now the most recently used
    assert checker(tokens[2], "my-client", org) is None  # evicts 1, the least recently used
    assert len(checker) == 2
    with strict.db.session() as s:
        s.execute(delete(ImsToken))
    assert checker(tokens[0], "my-client", org) is None  # still cached: within its recheck interval
    assert checker(tokens[1], "my-client", org).status == 401  # evicted, so read again: gone
    now[0] += 61
    assert checker(tokens[0], "my-client", org).status == 401  # recheck interval passed: read again, gone
    assert len(checker) == 1
    # Unknown tokens (forged, or with characters no token has) are never cached, so they cannot fill it.
    for forged in ("forged", "up\x00stack"):
        assert checker(forged, "my-client", org).status == 401
    assert len(checker) == 1
