"""The request journal (CONTRACT §10): list, filter, count, clear; secrets redacted; bounded; not the controls."""

from __future__ import annotations

import time

import pytest

from tests.conftest import HEADERS
from tests.ingest_helpers import CATALOG, IMPORT, OCTET
from upstack.services.journal import BodyCopy, Journal, Query, view

DATASETS = f"{CATALOG}/dataSets"
JOBS = "/data/core/ups/export/jobs"
OTHER = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg", "x-sandbox-name": "dev"})


def journal(client, **params) -> list[dict]:
    r = client.get("/_upstack/requests", params=params)
    assert r.status_code == 200, r.text
    return r.json()["requests"]


def test_every_aep_request_is_recorded_with_its_answer(client):
    client.delete("/_upstack/requests")
    r = client.post(DATASETS, json={"name": "a", "tags": {"x": ["y"]}}, headers={"x-request-id": "rid-1"})
    assert r.status_code == 201
    client.get(DATASETS, params={"limit": "5", "name": "a"})
    client.post(JOBS, json={"mergePolicy": {"id": "nope"}})
    client.get(DATASETS, headers={"Authorization": ""})  # refused at the gateway: recorded too
    client.get("/_upstack/health")  # the local controls are not AEP requests
    entries = journal(client)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", DATASETS, 201), ("GET", DATASETS, 200), ("POST", JOBS, 400), ("GET", DATASETS, 403)]
    first = entries[0]
    assert first["requestId"] == "rid-1" and first["body"] == {"name": "a", "tags": {"x": ["y"]}}
    assert first["tenant"] == {"org": HEADERS["x-gw-ims-org-id"], "sandbox": "prod"}
    assert first["headers"]["authorization"] == "[redacted]" and first["headers"]["x-api-key"] == "[redacted]"
    assert first["durationMs"] > 0 and first["loggedDate"] > 0 and first["bodySize"] > 0
    assert entries[1]["query"] == "limit=5&name=a" and entries[1]["body"] is None
    assert "test-token" not in client.get("/_upstack/requests").text


def test_filters_paging_count_and_clear(client):
    client.delete("/_upstack/requests")
    for i in range(5):
        client.post(DATASETS, json={"name": f"d{i}"})
    client.get(DATASETS, headers=OTHER)
    client.post(JOBS, json={})
    assert len(journal(client, method="post")) == 6
    assert len(journal(client, path="/data/foundation/catalog/*")) == 6
    assert [e["path"] for e in journal(client, org="OTHER@AdobeOrg", sandbox="dev")] == [DATASETS]
    assert [e["status"] for e in journal(client, status="4xx")] == [400]
    assert client.get("/_upstack/requests/count", params={"method": "POST", "path": DATASETS}).json() == {"count": 5}
    page = client.get("/_upstack/requests", params={"limit": 4}).json()
    assert len(page["requests"]) == 4 and page["meta"]["next"] == page["requests"][-1]["id"]
    rest = client.get("/_upstack/requests", params={"limit": 4, "after": page["meta"]["next"]}).json()
    assert len(rest["requests"]) == 3 and rest["meta"]["next"] is None
    since = page["requests"][2]["loggedDate"]
    assert all(e["loggedDate"] >= since for e in journal(client, since=since))
    assert client.delete("/_upstack/requests", params={"org": "OTHER@AdobeOrg"}).json() == {"cleared": 1}
    assert client.get("/_upstack/requests/count").json() == {"count": 6}
    assert client.delete("/_upstack/requests").json() == {"cleared": 6}
    assert journal(client) == []


@pytest.mark.parametrize("params", [{"limit": "x"}, {"status": "5x"}, {"since": "yesterday"}, {"after": "9" * 40}])
def test_bad_filters_are_400(client, params):
    assert client.get("/_upstack/requests", params=params).status_code == 400


def test_bodies_and_entries_are_bounded(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.journal_max_requests = 3
    ctx.settings.journal_max_body_bytes = 10
    with TestClient(create_app(ctx.settings, ctx)) as c:
        c.headers.update(HEADERS)
        c.post(DATASETS, json={"name": "x" * 100})
        ds = c.post(DATASETS, json={"name": "d"}).json()[0].split("/")[-1]
        batch = c.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": "json"}}).json()["id"]
        c.put(f"{IMPORT}/batches/{batch}/datasets/{ds}/files/a.json", content=b"{}\n" * 1000, headers=OCTET)
        entries = journal(c)
        assert len(entries) == 3 and entries[0]["body"] == '{"name":"d' and entries[0]["bodyTruncated"]
        assert entries[-1]["bodySize"] == 3000 and entries[-1]["body"] is None  # uploads are only counted


def test_memory_bound_drops_the_oldest():
    j = Journal(max_requests=1000, max_body_bytes=100_000, max_bytes=10_000)
    for i in range(20):
        j.record(f"r{i}", time.perf_counter(), "POST", "/x", b"", [], None, {}, BodyCopy("text/plain", b"x" * 3000),
                 200)
    entries, _ = j.find(Query(), 100)
    assert [e.request_id for e in entries] == ["r18", "r19"]


def test_journaled_records_cost_the_garbage_collector_nothing():
    import gc

    j = Journal(max_requests=1000, max_body_bytes=100, max_bytes=10**8)
    j.record("r", time.perf_counter(), "GET", "/x", b"a=1", [(b"host", b"h"), (b"authorization", b"Bearer t")],
             None, {}, None, 200)
    gc.collect()  # tuples of scalars (and of such tuples) are untracked by the collector's passes
    gc.collect()
    (held,) = j._entries
    assert not gc.is_tracked(held)
    (record,), _ = j.find(Query(), 10)
    assert view(record)["headers"] == {"host": "h", "authorization": "[redacted]"}


def test_journal_can_be_turned_off(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.journal_max_requests = 0
    with TestClient(create_app(ctx.settings, ctx)) as c:
        c.get(DATASETS, headers=HEADERS)
        assert journal(c) == []
