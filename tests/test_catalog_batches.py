"""Catalog's batch writes (issue 10 item 2): POST /batches (with or without the id), PUT, PATCH and DELETE
/batches/{id}, on both databases."""

from __future__ import annotations

import pytest

from tests.conftest import HEADERS
from tests.ingest_helpers import CATALOG, EXPORT, batch, create_dataset, ingest, json_lines, person, upload

OTHER = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})


def _new(client, ds: str, batch_id: str | None = None, **body) -> str:
    path = f"{CATALOG}/batches" + (f"/{batch_id}" if batch_id else "")
    r = client.post(path, json={"relatedObjects": [{"type": "dataSet", "id": ds}], **body})
    assert r.status_code == 201, r.text
    new_id = r.json()[0].split("/")[-1]
    assert r.json() == [f"@/batches/{new_id}"]
    assert r.headers["Location"] == f"{CATALOG}/batches/{new_id}"
    return new_id


def test_create_with_and_without_id_then_ingest_and_read(client, run_jobs):
    ds = create_dataset(client)
    b1 = _new(client, ds, status="loading", inputFormat={"format": "json"}, tags={"team": ["a"]}, externalId="ext-1")
    b2 = _new(client, ds, "my-batch-1", inputFormat={"format": "json"})
    assert b2 == "my-batch-1"
    view = batch(client, b1)
    assert view["status"] == "loading" and view["relatedObjects"] == [{"type": "dataSet", "id": ds}]
    assert view["tags"] == {"team": ["a"]} and view["externalId"] == "ext-1"
    listed = client.get(f"{CATALOG}/batches", params={"dataSet": ds}).json()
    assert set(listed) == {b1, b2}
    # the same id again, by anyone, is a conflict
    assert client.post(f"{CATALOG}/batches/my-batch-1", json={"datasetId": ds}).status_code == 409
    # usable like any batch: upload, move to processing through PATCH (COMPLETE), then Data Access shows it
    assert upload(client, b2, ds, "a.json", json_lines([person(1)])).status_code == 200
    r = client.patch(f"{CATALOG}/batches/{b2}", json={"status": "processing"})
    assert r.status_code == 200 and r.json() == [f"@/batches/{b2}"]
    assert batch(client, b2)["status"] == "processing"
    run_jobs()
    assert batch(client, b2)["status"] == "success"
    files = client.get(f"{EXPORT}/batches/{b2}/files").json()
    assert files["_page"]["count"] == 1


def test_bad_bodies_and_ids_are_400(client):
    ds = create_dataset(client)
    for body in ({"datasetId": ds, "status": "nonsense"}, {"datasetId": ds, "status": "success"},
                 {"datasetId": ds, "inputFormat": {"format": "json", "charset": "EBCDIC"}},
                 {"relatedObjects": [{"type": "table", "id": ds}]}, {"datasetId": ds, "tags": {"a": "b"}},
                 {"datasetId": ds, "started": "yesterday"}, {}, [1]):
        r = client.post(f"{CATALOG}/batches", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["title"] == "BadRequestError" and r.json()["status"] == 400
    for bad_id in ("..", "a%2Fb", "x" * 65, "_x"):
        assert client.post(f"{CATALOG}/batches/{bad_id}", json={"datasetId": ds}).status_code in (400, 404), bad_id
    # unknown members are ignored, as elsewhere in Catalog
    assert client.post(f"{CATALOG}/batches", json={"datasetId": ds, "whatever": 1}).status_code == 201


def test_patch_and_put_update_attributes_and_follow_the_state_table(client):
    ds = create_dataset(client)
    b = _new(client, ds, tags={"a": ["1"]}, externalId="e")
    assert client.patch(f"{CATALOG}/batches/{b}", json={"tags": {"b": ["2"]}, "size": 12}).status_code == 200
    view = batch(client, b)
    assert view["tags"] == {"b": ["2"]} and view["size"] == 12 and view["externalId"] == "e"
    # PUT replaces what the client set, and needs status
    assert client.put(f"{CATALOG}/batches/{b}", json={"tags": {"c": ["3"]}}).status_code == 400
    assert client.put(f"{CATALOG}/batches/{b}", json={"status": "loading", "tags": {"c": ["3"]}}).status_code == 200
    view = batch(client, b)
    assert view["tags"] == {"c": ["3"]} and "externalId" not in view and "size" not in view
    # illegal moves and values outside the enumeration
    for status in ("success", "staging", "failure", "bogus"):
        r = client.patch(f"{CATALOG}/batches/{b}", json={"status": status})
        assert r.status_code == 400, (status, r.text)
    assert client.patch(f"{CATALOG}/batches/{b}", json={"datasetId": "another"}).status_code == 400
    assert client.patch(f"{CATALOG}/batches/{b}", json={"status": "aborted"}).status_code == 200
    assert batch(client, b)["status"] == "aborted"
    assert client.patch(f"{CATALOG}/batches/{b}", json={"status": "loading"}).status_code == 400
    assert client.patch(f"{CATALOG}/batches/{b}", json={"status": "aborted", "tags": {}}).status_code == 200
    assert client.patch(f"{CATALOG}/batches/nope", json={"tags": {}}).status_code == 404


def test_delete_removes_files_and_profiles(client, run_jobs):
    ds = create_dataset(client)
    b = ingest(client, run_jobs, ds, {"a.json": json_lines([person(1)])})
    entity = {"schema.name": "_xdm.context.profile", "entityId": "p1@example.com", "entityIdNS": "Email"}
    assert client.get("/data/core/ups/access/entities", params=entity).status_code == 200
    file_id = client.get(f"{EXPORT}/batches/{b}/files").json()["data"][0]["dataSetFileId"]
    r = client.delete(f"{CATALOG}/batches/{b}")
    assert r.status_code == 200 and r.json() == [f"@/batches/{b}"]
    assert client.get(f"{CATALOG}/batches/{b}").status_code == 404
    assert client.get(f"{EXPORT}/files/{file_id}").status_code == 404
    assert client.get("/data/core/ups/access/entities", params=entity).status_code == 404
    assert client.delete(f"{CATALOG}/batches/{b}").status_code == 404
    # a loading batch can go too (its uploads with it)
    loading = _new(client, ds, inputFormat={"format": "json"})
    assert upload(client, loading, ds, "a.json", json_lines([person(2)])).status_code == 200
    assert client.delete(f"{CATALOG}/batches/{loading}").status_code == 200
    assert client.get(f"{CATALOG}/batches", params={"dataSet": ds}).json() == {}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_another_tenants_batch_is_404(client, method):
    ds = create_dataset(client)
    b = _new(client, ds)
    body = {"status": "loading"} if method != "DELETE" else None
    r = client.request(method, f"{CATALOG}/batches/{b}", json=body, headers=OTHER)
    assert r.status_code == 404, r.text
    assert r.json()["title"] == "NotFoundError"
    assert batch(client, b)["status"] == "loading"
