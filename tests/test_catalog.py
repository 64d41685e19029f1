"""Catalog datasets and batch listings through HTTP (CONTRACT §3)."""

from __future__ import annotations

import pytest

from tests.conftest import HEADERS, ORG

UNION = "https://ns.adobe.com/xdm/context/profile__union"
PROFILE_SCHEMA = "https://ns.adobe.com/acme/schemas/person"


def create(client, name="people", schema=PROFILE_SCHEMA, **extra):
    body = {"name": name, "schemaRef": {"id": schema, "contentType": "application/vnd.adobe.xed+json;version=1"}}
    body.update(extra)
    r = client.post("/data/foundation/catalog/dataSets", json=body)
    assert r.status_code == 201, r.text
    ref = r.json()[0]
    assert ref.startswith("@/dataSets/")
    return ref.split("/")[-1]


def test_create_get_map_form(client):
    ds = create(client, tags={"unifiedProfile": ["enabled: true"]})
    assert len(ds) == 24
    r = client.get(f"/data/foundation/catalog/dataSets/{ds}")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == [ds]
    view = body[ds]
    assert view["name"] == "people"
    assert view["imsOrg"] == ORG
    assert view["classification"] == {}
    assert view["tags"] == {"unifiedProfile": ["enabled: true"]}
    assert view["schemaRef"]["id"] == PROFILE_SCHEMA
    assert isinstance(view["created"], int)


def test_list_paging_filters_and_past_end(client):
    ids = [create(client, name=f"ds-{i}") for i in range(5)]
    page = client.get("/data/foundation/catalog/dataSets", params={"limit": 2, "start": 1}).json()
    assert list(page) == ids[1:3]
    assert client.get("/data/foundation/catalog/dataSets", params={"start": 50}).json() == {}
    only = client.get("/data/foundation/catalog/dataSets", params={"name": "ds-1,ds-3"}).json()
    assert sorted(only) == sorted([ids[1], ids[3]])
    neg = client.get("/data/foundation/catalog/dataSets", params={"name": "!ds-0"}).json()
    assert ids[0] not in neg and len(neg) == 4
    wild = client.get("/data/foundation/catalog/dataSets", params={"name": "ds-*"}).json()
    assert len(wild) == 5
    desc = client.get("/data/foundation/catalog/dataSets", params={"orderBy": "desc:created", "limit": 5}).json()
    assert list(desc)[0] in ids
    props = client.get("/data/foundation/catalog/dataSets", params={"properties": "name"}).json()
    assert all(set(v) == {"name"} for v in props.values())


@pytest.mark.parametrize("limit", ["0", "101", "abc"])
def test_bad_limit_is_400_catalog_shape(client, limit):
    r = client.get("/data/foundation/catalog/dataSets", params={"limit": limit})
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "/placeholder/type/uri" and body["status"] == 400 and body["detail"]


def test_patch_enables_profile_and_delete(client):
    ds = create(client)
    r = client.patch(f"/data/foundation/catalog/dataSets/{ds}", json={"tags": {"unifiedProfile": ["enabled:true"]}})
    assert r.status_code == 200
    view = client.get(f"/data/foundation/catalog/dataSets/{ds}").json()[ds]
    assert view["tags"]["unifiedProfile"] == ["enabled:true"]
    assert client.delete(f"/data/foundation/catalog/dataSets/{ds}").status_code == 200
    r = client.get(f"/data/foundation/catalog/dataSets/{ds}")
    assert r.status_code == 404
    assert r.json() == {"type": "/placeholder/type/uri", "status": 404, "title": "NotFoundError",
                        "detail": "DataSet not found."}


def test_other_tenant_cannot_see(client):
    ds = create(client)
    other = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})
    assert client.get(f"/data/foundation/catalog/dataSets/{ds}", headers=other).status_code == 404
    assert client.get("/data/foundation/catalog/dataSets", headers=other).json() == {}
    sandbox = dict(HEADERS, **{"x-sandbox-name": "dev"})
    assert client.get(f"/data/foundation/catalog/dataSets/{ds}", headers=sandbox).status_code == 404
    assert client.delete(f"/data/foundation/catalog/dataSets/{ds}", headers=other).status_code == 404


@pytest.mark.parametrize("body,status", [
    ({}, 400), ({"name": ""}, 400), ({"name": 5}, 400), ({"name": "x", "tags": []}, 400),
    ({"name": "x", "tags": {"a": "notalist"}}, 400),
])
def test_create_validation(client, body, status):
    r = client.post("/data/foundation/catalog/dataSets", json=body)
    assert r.status_code == status
    assert r.json()["status"] == status


def test_malformed_json_and_wrong_content_type(client):
    r = client.post("/data/foundation/catalog/dataSets", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "/placeholder/type/uri"
    r = client.post("/data/foundation/catalog/dataSets", content=b"name=x",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = client.post("/data/foundation/catalog/dataSets", content=b'{"name": "x"}',
                    headers={"Content-Type": "application/xml"})
    assert r.status_code == 415 and r.json()["title"] == "UnsupportedMediaTypeError"


def test_json_body_as_text_plain_or_without_content_type(client):
    """CONTRACT §1: every JSON endpoint reads text/plain or an absent Content-Type as JSON."""
    for headers in ({"Content-Type": "text/plain"}, {}):
        r = client.post("/data/foundation/catalog/dataSets", content=b'{"name": "plain"}', headers=headers)
        assert r.status_code == 201, r.text
        ds = r.json()[0].split("/")[-1]
        r = client.patch(f"/data/foundation/catalog/dataSets/{ds}", content=b'{"description": "d"}', headers=headers)
        assert r.status_code == 200, r.text
        r = client.post("/data/foundation/import/batches", headers=headers,
                        content=b'{"datasetId": "%s", "inputFormat": {"format": "json"}}' % ds.encode())
        assert r.status_code == 201, r.text
        r = client.post("/data/foundation/catalog/dataSets", content=b"{not json", headers=headers)
        assert r.status_code == 400 and r.json()["type"] == "/placeholder/type/uri"


def test_trailing_slash_and_unknown_route(client):
    create(client)
    assert client.get("/data/foundation/catalog/dataSets/").status_code == 200
    r = client.get("/data/foundation/catalog/nope")
    assert r.status_code == 404 and r.json()["title"] == "NotFoundError"


def test_schema_ref_content_type_must_be_a_string_and_new_dataset_has_no_batch_keys(client):
    r = client.post("/data/foundation/catalog/dataSets", json={"name": "x", "schemaRef": {"id": "a", "contentType": {}}})
    assert r.status_code == 400
    view = client.get(f"/data/foundation/catalog/dataSets/{create(client)}").json()
    assert "lastBatchStatus" not in next(iter(view.values()))
