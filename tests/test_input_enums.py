"""Every enum of the request schemas of the 40 operations in Adobe's spec (aep-export-loop.augmented.openapi.json)
that this server accepts is checked on the way in: a value outside it is 400 in the family's shape and nothing
is stored, so nothing outside the enum is ever echoed back.

The enums, by operation:

- POST/PUT/PATCH catalog `/dataSets`: fileDescription.format ('', csv, text, parquet, json, sequencefile, avro),
  fileDescription.charset (US-ASCII, UTF-8, ISO-8859-1, '').
- POST catalog `/batches`: status (16 batch states), inputFormat.format (csv, parquet, json, avro; this server
  ingests json and parquet), inputFormat.charset (US-ASCII, UTF-8, ISO-8859-1), relatedObjects[].type (batch,
  dataSet, dataSetFile, dataSetView, transform), relatedObjects[].status.
- POST import `/batches`: inputFormat.format (JSON, Parquet, CSV; json and parquet here, in any case).
- POST import `/batches/{id}?action=` (COMPLETE, ABORT, FAIL, REVERT), POST `.../files/{name}?action=`
  (INITIALIZE, COMPLETE).
- POST/PUT mergePolicies: identityGraph.type (none, pdg), attributeMerge.type (timestampOrdered,
  dataSetPrecedence); PATCH: op (add; 'replace' is
  tolerated as its JSON Patch synonym).
- GET export `/jobs?status=` (NEW, SUCCEEDED, FAILED, and the states in between), GET access `/entities?schema.name=`.
- PUT/PATCH/POST catalog `/batches/{id}` list the same batch enums, checked the same way (tests/test_catalog_bodies.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import ORG

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
MP = "/data/core/ups/config/mergePolicies"
PROFILE_SCHEMA = "https://ns.adobe.com/acme/schemas/person"


def catalog_400(r) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == 400 and body["type"] == "/placeholder/type/uri" and body["title"], body
    return body["detail"]


def ups_400(r) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == 400 and body["errors"]["400"][0]["code"] == "UPAPI-113434-400", body
    return body["errors"]["400"][0]["message"]


def dataset(client, **extra) -> str:
    r = client.post(f"{CATALOG}/dataSets", json={"name": "people", "schemaRef": {"id": PROFILE_SCHEMA}, **extra})
    assert r.status_code == 201, r.text
    return r.json()[0].split("/")[-1]


BAD_FILE_DESCRIPTIONS = [
    {"charset": "AAA"}, {"charset": {"x": 1}}, {"charset": 8}, {"charset": None}, {"charset": "utf-8"},
    {"format": "xml"}, {"format": ["json"]}, {"format": "PARQUET"}, {"format": None},
    # the other typed members (make conformance found `header: {}` stored and echoed)
    {"header": {}}, {"header": "yes"}, {"delimiters": ","}, {"quotes": [1]}, {"nullMarkers": [{}]},
    {"header": None}, {"nullMarkers": None}, {"delimiters": ["00"]},
]


@pytest.mark.parametrize("fd", BAD_FILE_DESCRIPTIONS)
def test_dataset_file_description_enums_are_refused(client, fd):
    detail = catalog_400(client.post(f"{CATALOG}/dataSets", json={"name": "bad", "fileDescription": fd}))
    assert "fileDescription" in detail
    assert client.get(f"{CATALOG}/dataSets").json() == {}
    ds = dataset(client, fileDescription={"format": "json", "charset": "UTF-8"})
    catalog_400(client.patch(f"{CATALOG}/dataSets/{ds}", json={"fileDescription": fd}))
    catalog_400(client.put(f"{CATALOG}/dataSets/{ds}", json={"name": "people", "fileDescription": fd}))
    got = client.get(f"{CATALOG}/dataSets/{ds}").json()[ds]
    assert got["fileDescription"] == {"format": "json", "charset": "UTF-8"} and got["version"] == "1.0.0"


@pytest.mark.parametrize("fd", [
    {"format": f, "charset": c} for f, c in zip(["", "csv", "text", "parquet", "json", "sequencefile", "avro"],
                                                ["US-ASCII", "UTF-8", "ISO-8859-1", "", "UTF-8", "UTF-8", "UTF-8"], strict=True)
] + [{"delimiters": [","], "header": True, "persisted": True}])
def test_dataset_file_description_enum_values_are_kept(client, fd):
    ds = dataset(client, fileDescription=fd)
    assert client.get(f"{CATALOG}/dataSets/{ds}").json()[ds]["fileDescription"] == fd
    r = client.patch(f"{CATALOG}/dataSets/{ds}", json={"fileDescription": dict(fd, charset="ISO-8859-1")})
    assert r.status_code == 200, r.text
    assert client.get(f"{CATALOG}/dataSets/{ds}").json()[ds]["fileDescription"]["charset"] == "ISO-8859-1"


@pytest.mark.parametrize("body", [{"description": {"a": 1}}, {"enableErrorDiagnostics": "yes"},
                                  {"basePath": 3}, {"observableSchema": []}])
def test_dataset_members_of_the_wrong_type_are_refused(client, body):
    catalog_400(client.post(f"{CATALOG}/dataSets", json={"name": "bad", **body}))
    assert client.get(f"{CATALOG}/dataSets").json() == {}


@pytest.mark.parametrize("extra", [
    {"status": "bogus"}, {"status": 3}, {"inputFormat": {"format": "json", "charset": "EBCDIC"}},
    {"inputFormat": {"format": "xml"}}, {"relatedObjects": [{"type": "table", "id": "x"}]},
    {"relatedObjects": [{"type": "dataSet", "id": "x", "status": "done"}]}, {"relatedObjects": ["x"]},
])
def test_catalog_batch_enums_are_refused(client, extra):
    ds = dataset(client)
    body = {"relatedObjects": [{"type": "dataSet", "id": ds}], **extra}
    catalog_400(client.post(f"{CATALOG}/batches", json=body))
    assert client.get(f"{CATALOG}/batches").json() == {}


def test_catalog_batch_enum_values_are_accepted(client):
    ds = dataset(client)
    r = client.post(f"{CATALOG}/batches", json={
        "status": "loading", "inputFormat": {"format": "json", "charset": "UTF-8"},
        "relatedObjects": [{"type": "dataSet", "id": ds, "status": "processing"}, {"type": "transform", "id": "t"}]})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("fmt", ["xml", "csv", "avro", 1, None, {"x": 1}])
def test_import_batch_input_format_is_refused(client, fmt):
    ds = dataset(client)
    catalog_400(client.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": fmt}}))


@pytest.mark.parametrize("fmt", ["json", "JSON", "parquet", "Parquet"])
def test_import_batch_input_format_values(client, fmt):
    ds = dataset(client)
    r = client.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": fmt}})
    assert r.status_code == 201 and r.json()["inputFormat"]["format"] == fmt.lower(), r.text


def test_query_enums(client):
    ds = dataset(client)
    b = client.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": "json"}}).json()["id"]
    catalog_400(client.post(f"{IMPORT}/batches/{b}?action=FINISH"))
    catalog_400(client.post(f"{IMPORT}/batches/{b}/datasets/{ds}/files/a.json?action=START"))
    ups_400(client.get("/data/core/ups/export/jobs?status=DONE"))
    assert client.get("/data/core/ups/export/jobs?status=SUCCEEDED").status_code == 200
    ups_400(client.get("/data/core/ups/access/entities?schema.name=_xdm.context.bogus&entityId=1&entityIdNS=ECID"))


@pytest.mark.parametrize("bad", [
    {"identityGraph": {"type": "cookie"}}, {"identityGraph": {"type": None}}, {"identityGraph": {"type": ["pdg"]}},
    {"attributeMerge": {"type": "newestFirst"}}, {"attributeMerge": {"type": {"a": 1}}},
])
def test_merge_policy_enums(client, bad):
    body = {"name": "p", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "timestampOrdered"}, **bad}
    ups_400(client.post(MP, json=body))
    good = client.post(MP, json=dict(body, identityGraph={"type": "pdg"}, attributeMerge={"type": "timestampOrdered"}))
    assert good.status_code == 200, good.text
    p = good.json()
    ups_400(client.put(f"{MP}/{p['id']}", json=dict(p, **bad)))
    ups_400(client.patch(f"{MP}/{p['id']}", json={"op": "remove", "path": "/name", "value": "x"}))
    key = next(iter(bad))
    ups_400(client.patch(f"{MP}/{p['id']}", json={"op": "add", "path": f"/{key}.type", "value": bad[key]["type"]}))
    assert client.get(f"{MP}/{p['id']}").json() == p
    assert p["imsOrgId"] == ORG


def test_export_job_segment_status(client):
    """Not enumerated in the spec's request schema, but Adobe's page lists realized, existing, exited."""
    r = client.post(f"{CATALOG}/dataSets", json={"name": "u", "schemaRef": {
        "id": "https://ns.adobe.com/xdm/context/profile__union"}})
    union = r.json()[0].split("/")[-1]
    body = {"destination": {"datasetId": union}, "schema": {"name": "_xdm.context.profile"},
            "filter": {"segments": [{"segmentId": "s1", "status": ["realized", "gone"]}]}}
    ups_400(client.post("/data/core/ups/export/jobs", json=body))
    body["filter"]["segments"][0]["status"] = ["realized", "existing", "exited"]
    assert client.post("/data/core/ups/export/jobs", json=body).status_code == 200
