"""Gateway header rules, auth modes, error shapes and limits (CONTRACT §1-2)."""

from __future__ import annotations

import pytest

from tests.conftest import HEADERS

PATH = "/data/foundation/catalog/dataSets"


def without(name):
    return {k: v for k, v in HEADERS.items() if k != name}


@pytest.mark.parametrize("missing,status,body", [
    ("Authorization", 403, {"error_code": "403010", "message": "Oauth token is missing."}),
    ("x-api-key", 403, {"error_code": "403000", "message": "Api Key is required"}),
    ("x-gw-ims-org-id", 400, {"error_code": "400003", "message": "Missing header"}),
])
def test_missing_headers(client, missing, status, body):
    client.headers.clear()
    r = client.get(PATH, headers=without(missing))
    assert r.status_code == status
    assert r.json() == body


def test_first_failure_answers(client):
    client.headers.clear()
    r = client.get(PATH, headers={"x-gw-ims-org-id": "X"})
    assert r.json()["error_code"] == "403010"


def test_sandbox_defaults_to_prod(client):
    client.headers.clear()
    r = client.post(PATH, json={"name": "a"}, headers=without("x-sandbox-name"))
    ds = r.json()[0].split("/")[-1]
    assert client.get(f"{PATH}/{ds}", headers=HEADERS).status_code == 200


def test_request_id_header_and_health_needs_no_headers(client):
    client.headers.clear()
    r = client.get("/_upstack/health")
    assert r.status_code == 200
    assert r.json()["database"] == "ok" and r.json()["lake"] == "ok"
    assert r.headers["x-request-id"]


def test_body_limit(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.max_body_bytes = 100
    with TestClient(create_app(ctx.settings, ctx)) as c:
        r = c.post(PATH, json={"name": "x" * 500}, headers=HEADERS)
        assert r.status_code == 413
        assert r.json()["status"] == 413 and r.json()["title"] == "PayloadTooLargeError"
        assert c.get(PATH, headers=HEADERS).status_code == 200


def test_strict_mode_tokens(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.auth = "strict"
    ctx.settings.ims_clients = "my-client:s3cret:TESTORG@AdobeOrg"
    with TestClient(create_app(ctx.settings, ctx)) as c:
        bad = c.post("/ims/token/v3", data={"grant_type": "client_credentials", "client_id": "my-client",
                                             "client_secret": "wrong"})
        assert bad.status_code == 401
        r = c.post("/ims/token/v3", data={"grant_type": "client_credentials", "client_id": "my-client",
                                           "client_secret": "s3cret", "scope": "openid"})
        assert r.status_code == 200
        tok = r.json()
        assert tok["token_type"] == "bearer" and tok["expires_in"] == 86399
        good = dict(HEADERS, Authorization=f"Bearer {tok['access_token']}", **{"x-api-key": "my-client"})
        assert c.get(PATH, headers=good).status_code == 200
        r = c.get(PATH, headers=dict(good, Authorization="Bearer forged"))
        assert r.status_code == 401 and r.json() == {"error_code": "401013", "message": "Oauth token is not valid"}
        r = c.get(PATH, headers=dict(good, **{"x-api-key": "other"}))
        assert r.status_code == 403 and r.json()["error_code"] == "403003"
        r = c.get(PATH, headers=dict(good, **{"x-gw-ims-org-id": "ELSE@AdobeOrg"}))
        assert r.status_code == 403


def test_permissive_token_endpoint(client):
    r = client.post("/ims/token/v3", data={"grant_type": "client_credentials", "client_id": "anyone",
                                           "client_secret": "x"})
    assert r.status_code == 200 and r.json()["access_token"]
