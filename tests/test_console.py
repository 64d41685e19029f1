"""The local console (/_upstack/console) through the app: every page renders HTML of one tenant's objects, forms
change controls through the same services as the JSON routes, hostile input gets a clean 400/404 page, and the
/_upstack protections hold (same-origin forms only; the admin token or the console's session in strict mode).
tests/live/test_console_browser.py drives the same pages in a real headless Chromium."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from tests.conftest import ORG
from tests.ingest_helpers import create_dataset as plain_dataset
from tests.ingest_helpers import ingest, json_lines, person
from tests.profile_data import JOBS, load_world, union_dataset

CONSOLE = "/_upstack/console"
TENANT = {"org": ORG, "sandbox": "prod"}
SAME_ORIGIN = {"Origin": "http://testserver"}


def page(client, path: str = "", expect: int = 200, **params) -> str:
    r = client.get(f"{CONSOLE}{path}", params={**TENANT, **params})
    assert r.status_code == expect, r.text[:2000]
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    return r.text


def post_form(client, action: str, data: dict, headers=SAME_ORIGIN, **params):
    return client.post(f"{CONSOLE}/controls/{action}", params={**TENANT, **params}, data=data, headers=headers,
                       follow_redirects=False)


@pytest.fixture
def world(client, ctx, run_jobs):
    ids = load_world(client, ctx, run_jobs)
    ids["target"] = union_dataset(client)
    r = client.post(JOBS, json={"destination": {"datasetId": ids["target"]}, "schema": {"name": "_xdm.context.profile"},
                                "mergePolicy": {"id": ids["pdg"]}})
    assert r.status_code == 200, r.text
    ids["job"] = r.json()["id"]
    run_jobs()
    assert client.get(f"{JOBS}/{ids['job']}").json()["status"] == "SUCCEEDED"
    return ids


def test_overview_shows_datasets_batches_jobs_and_policies(client, world):
    html = page(client)
    for name in ("crm", "loyalty", "web", "Profile Data Export", "stitched", "timestampOrdered-none-mp"):
        assert name in html
    assert html.count('class="status s-success"') >= 3  # the three ingested batches (and the export's)
    job = re.search(rf'<tr class="job" data-id="{world["job"]}">(.*?)</tr>', html, re.S).group(1)
    assert "SUCCEEDED" in job and world["pdg"] in job and "totalTime" in job
    file_link = re.search(r'href="(/_upstack/console/files/[^"]+)"', job).group(1).replace("&amp;", "&")

    files = client.get(file_link)
    assert files.status_code == 200 and "/data/foundation/export/files/" in files.text
    download = re.search(r'class="download" href="([^"]+)"', files.text).group(1).replace("&amp;", "&")
    data = client.get(download)
    assert data.status_code == 200 and data.content[:4] == b"PAR1"  # the Parquet part Data Access serves


def test_batch_page_lists_row_errors(client, run_jobs):
    ds = plain_dataset(client, "mixed")
    b = ingest(client, run_jobs, ds, {"mixed.json": json_lines([person(1)]) + b"{not json\n"})
    overview = page(client)
    assert f'/batches/{b}?org=TESTORG%40AdobeOrg&amp;sandbox=prod#row-errors' in overview
    html = page(client, f"/batches/{b}")
    assert "ROW-JSON-INVALID" in html and "mixed.json" in html and "1 failed row(s)" in html


def test_lookup_form_renders_the_profile_or_the_404_message(client, world):
    form = page(client, "/lookup")
    assert 'id="lookup-form"' in form and f'<option value="{world["pdg"]}"' in form
    html = page(client, "/lookup", namespace="Email", id="ann@x.com", mergePolicyId=world["pdg"])
    assert '<pre id="entity">' in html and "Annie" in html and "ann@x.com" in html
    missing = page(client, "/lookup", 404, namespace="Email", id="nobody@x.com")
    assert 'id="problem"' in missing and '<pre id="entity">' not in missing


def test_journal_page_shows_the_tenants_requests(client):
    client.get("/data/foundation/catalog/dataSets", params={"limit": 5})
    html = page(client, "/requests")
    assert "/data/foundation/catalog/dataSets" in html and "limit=5" in html
    assert "/data/foundation/catalog/dataSets" not in page(client, "/requests", org="SOMEONE@AdobeOrg")
    assert "/data/foundation/catalog/dataSets" in page(client, "/requests", org="SOMEONE@AdobeOrg", all="1")
    assert "/data/foundation/catalog/dataSets" not in page(client, "/requests", method="POST")


def test_control_forms_set_and_clear_through_the_controls_services(client):
    r = post_form(client, "pacing", {"mode": "manual", "delaySeconds": "0", "holdAt": "PROCESSING"})
    assert r.status_code == 303 and r.headers["location"].startswith(f"{CONSOLE}/controls?")
    mine = client.get("/_upstack/controls").json()["tenantPacing"]
    assert mine == [{"org": ORG, "sandbox": "prod", "mode": "manual", "delaySeconds": 0.0, "holdAt": "PROCESSING"}]
    assert post_form(client, "fault", {"method": "GET", "path": "/data/core/ups/export/jobs*", "status": "503",
                                       "times": "1", "latencyMs": "0"}).status_code == 303
    assert client.get(JOBS).status_code == 503  # in force for the very next request
    assert client.get(JOBS).status_code == 200
    assert post_form(client, "failure", {"kind": "export", "times": "2"}).status_code == 303
    html = page(client, "/controls", done="failure")
    assert 'id="done"' in html and "FORCED-FAILURE" in html and "PROCESSING" in html
    assert post_form(client, "release", {}).status_code == 303
    assert post_form(client, "clear", {}).status_code == 303
    now = client.get("/_upstack/controls").json()
    assert now["tenantPacing"] == [] and now["failNextJobs"] == [] and now["faults"] == []


def test_control_forms_refuse_bad_values_with_a_400_page(client):
    for action, data in (("pacing", {"mode": "sometimes"}), ("pacing", {"delaySeconds": "nan"}),
                         ("fault", {"path": "/x", "status": "200"}), ("failure", {"kind": "store"}),
                         ("fault", {"path": "/x", "extra": "1"})):
        r = post_form(client, action, data)
        assert r.status_code == 400, (action, data, r.text[:500])
        assert r.headers["content-type"].startswith("text/html") and 'id="problem"' in r.text
    r = post_form(client, "explode", {})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert client.get("/_upstack/controls").json()["tenantPacing"] == []


def test_forms_come_from_the_console_itself_only(client):
    """A web page elsewhere cannot post a console form: a foreign Origin, no Origin, a cross-site fetch and a
    JSON-less body are all refused before the route runs."""
    assert post_form(client, "clear", {}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert post_form(client, "clear", {}, headers={}).status_code == 403
    assert post_form(client, "clear", {}, headers=dict(SAME_ORIGIN, **{"Sec-Fetch-Site": "cross-site"})).status_code == 403
    text = client.post(f"{CONSOLE}/controls/clear", params=TENANT, content=b"x=1",
                       headers=dict(SAME_ORIGIN, **{"Content-Type": "text/plain"}))
    assert text.status_code == 415
    # Forms are a console thing: the JSON controls still refuse them, Origin or not.
    r = client.post("/_upstack/faults", data={"path": "/x"}, headers=SAME_ORIGIN)
    assert r.status_code == 415
    assert client.get(CONSOLE, headers={"Origin": "http://evil.example"}).status_code == 403


@pytest.mark.parametrize("params, status", [
    ({"org": "o" * 256}, 400),
    ({"org": "bad\x01org"}, 400),
    ({"sandbox": "s\nb"}, 400),
    ({"org": "<script>alert(1)</script>"}, 200),
])
def test_hostile_tenants_get_a_clean_page(client, params, status):
    for path in ("", "/lookup", "/requests", "/controls", "/batches/x", "/files/x"):
        r = client.get(f"{CONSOLE}{path}", params=params)
        expected = 404 if status == 200 and path in ("/batches/x", "/files/x") else status
        assert r.status_code == expected, (path, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        assert "<script>" not in r.text


def test_hostile_lookups_and_ids_get_a_clean_page(client):
    assert 'id="problem"' in page(client, "/lookup", 400, namespace="Email", id="x", mergePolicyId="no-such-policy")
    assert 'id="problem"' in page(client, "/lookup", 400, namespace="", id="x")
    assert 'id="problem"' in page(client, "/lookup", 400, namespace="Email", id="x" * 5000)
    html = page(client, "/lookup", 404, namespace="Email", id="<img src=x onerror=alert(1)>")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    for path in ("/batches/no-such-batch", "/batches/%00", "/files/none", "/files/none/download"):
        r = client.get(f"{CONSOLE}{path}", params={**TENANT, "path": "x"})
        assert r.status_code == 404, (path, r.text[:300])
    assert page(client, "/requests", 400, status="abc")
    assert client.get(f"{CONSOLE}/nothing-here", params=TENANT).status_code == 404


def test_names_are_escaped_and_lists_bounded(client):
    for i in range(102):
        plain_dataset(client, f"ds-{i:03d}")
    plain_dataset(client, "<b>bold</b> & co")
    html = page(client)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html and "<b>bold</b>" not in html
    assert html.count('<h3 class="dataset"') == 100 and "The newest 100 datasets are shown." in html
    assert "ds-000" not in html and "ds-101" in html  # newest first


def test_strict_mode_needs_the_admin_token_or_the_console_session(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.auth = "strict"
    ctx.settings.admin_token = SecretStr("adm1n")
    with TestClient(create_app(ctx.settings, ctx), raise_server_exceptions=False) as c:
        assert c.get(CONSOLE).status_code == 401
        assert c.get(CONSOLE, headers={"Authorization": "Bearer adm1n"}).status_code == 200
        assert c.get(CONSOLE, headers={"Cookie": "upstack_console=forged"}).status_code == 401
        assert c.get(f"{CONSOLE}/login").status_code == 200
        wrong = c.post(f"{CONSOLE}/login", data={"token": "guess"}, headers=SAME_ORIGIN, follow_redirects=False)
        assert wrong.status_code == 401 and "upstack_console" not in wrong.headers.get("set-cookie", "")
        assert c.post(f"{CONSOLE}/login", data={"token": "adm1n"}, follow_redirects=False).status_code == 403
        ok = c.post(f"{CONSOLE}/login", data={"token": "adm1n"}, headers=SAME_ORIGIN, follow_redirects=False)
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/_upstack/console" in cookie
        assert "adm1n" not in cookie
        assert c.get(CONSOLE).status_code == 200  # the session cookie now stands for the token
        assert c.get("/_upstack/controls").status_code == 401  # ... on console paths only
        assert c.post(f"{CONSOLE}/controls/clear", data={}, headers=SAME_ORIGIN, follow_redirects=False).status_code == 303


def test_ci_installs_the_browser_before_the_tests():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    install = script.index("apt-get install -y -q chromium chromium-driver")
    assert "DEBIAN_FRONTEND=noninteractive" in script and install < script.index("\nmake test")
    assert "/usr/bin/chromium" in script and "/usr/bin/chromedriver" in script


def test_browsing_writes_nothing(client, ctx):
    """Looking at a tenant never seen does not create it (the API's policy list would seed its default policy)."""
    from sqlalchemy import func, select

    from upstack.storage.models import Tenant

    html = page(client, org="NEVER-SEEN@AdobeOrg")
    assert "None yet" in html
    page(client, "/lookup", org="NEVER-SEEN@AdobeOrg")
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Tenant).where(Tenant.org == "NEVER-SEEN@AdobeOrg")) == 0
