"""Catalog's typed bodies (issue 11, CONTRACT §3): the texts of the common mistakes, the members ignored and named
in x-upstack-warning (and those kept as sent, which are not), hostile bodies, and the real answers against the
response models /openapi.json declares."""

from __future__ import annotations

import pytest

from tests.conftest import HEADERS
from tests.ingest_helpers import (
    CATALOG,
    IMPORT,
    UNION,
    complete,
    create_batch,
    create_dataset,
    ingest,
    json_lines,
    person,
    upload,
)
from upstack.schemas import catalog as cat
from upstack.storage.models import Dataset

DATASETS = f"{CATALOG}/dataSets"
BATCHES = f"{CATALOG}/batches"
STATUSES = ("'processing', 'success', 'failure', 'queued', 'retrying', 'stalled', 'aborted', 'abandoned', 'inactive', "
            "'failed', 'loading', 'loaded', 'staged', 'active', 'staging' or 'deleted'")


# What every dataset and batch answer holds, unless `properties` names the members wanted (the models require
# none of them, as Adobe's schemas do not).
DATASET_ALWAYS = ("name", "imsOrg", "sandboxId", "sandbox", "version", "created", "updated", "createdClient",
                  "createdUser", "updatedUser", "tags", "classification", "fileDescription", "viewId", "files")
BATCH_ALWAYS = ("imsOrg", "sandboxId", "sandbox", "status", "created", "updated", "createdClient", "createdUser",
                "updatedUser", "version", "tags", "relatedObjects", "inputFormat", "metrics", "errors")


def bad(r) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "/placeholder/type/uri" and body["title"] == "BadRequestError", body
    return body["detail"]


# The texts of the common mistakes, as the hand-written checks said them before the models replaced them
# (one mistake per body; a body with several now names each of them).
DATASET_MESSAGES = [
    ([1], "Request body must be a JSON object."),
    ("x", "Request body must be a JSON object."),
    ({"name": 5, "tags": {"a": 1}}, "Dataset 'name' is required and must be a non-empty string."),
    ({"tags": {}}, "Dataset 'name' is required and must be a non-empty string."),
    ({"name": "  "}, "Dataset 'name' is required and must be a non-empty string."),
    ({"name": None}, "Dataset 'name' is required and must be a non-empty string."),
    ({"name": "x" * 1025}, "Dataset 'name' must be at most 1024 characters."),
    ({"name": "x", "tags": []}, "'tags' must be an object."),
    ({"name": "x", "tags": {"a": "notalist"}}, "Tag 'a' must be an array of strings."),
    ({"name": "x", "tags": {"a": ["b"], "c": [None]}}, "Tag 'c' must be an array of strings."),
    ({"name": "x", "schemaRef": "s"}, "'schemaRef' must be an object with a string 'id' and a string 'contentType'."),
    ({"name": "x", "schemaRef": {"id": None}},
     "'schemaRef' must be an object with a string 'id' and a string 'contentType'."),
    ({"name": "x", "schemaRef": {"id": "a", "contentType": {}}},
     "'schemaRef' must be an object with a string 'id' and a string 'contentType'."),
    ({"name": "x", "fileDescription": []}, "'fileDescription' must be an object."),
    ({"name": "x", "classification": "c"}, "'classification' must be an object."),
    ({"name": "x", "fileDescription": {"format": "xml"}}, "Invalid request: fileDescription.format: Input should be "
     "'', 'csv', 'text', 'parquet', 'json', 'sequencefile' or 'avro'"),
    ({"name": "x", "fileDescription": {"charset": 8}}, "Invalid request: fileDescription.charset: Input should be "
     "'US-ASCII', 'UTF-8', 'ISO-8859-1' or ''"),
    ({"name": "x", "fileDescription": {"delimiters": ["00"]}},
     "Invalid request: fileDescription.delimiters[0]: String should have at most 1 character"),
    ({"name": "x", "fileDescription": {"header": None}},
     "Invalid request: fileDescription.header: Input should be a valid boolean"),
    ({"name": "x", "description": 5}, "Invalid request: description: Input should be a valid string"),
    ({"name": "x", "enableErrorDiagnostics": "yes"},
     "Invalid request: enableErrorDiagnostics: Input should be a valid boolean"),
    ({"name": "x", "observableSchema": []}, "Invalid request: observableSchema: Input should be a valid dictionary"),
    ({"name": "x", "basePath": 3}, "Invalid request: basePath: Input should be a valid string"),
]
PATCH_MESSAGES = [
    ({"name": 5}, "Dataset 'name' must be a string."),
    ({"name": None}, "Dataset 'name' must be a string."),
    ({"tags": []}, "'tags' must be an object."),
    ([1], "Request body must be a JSON object."),
]


def test_dataset_mistakes_keep_their_messages(client):
    ds = create_dataset(client)
    for body, message in DATASET_MESSAGES:
        assert bad(client.post(DATASETS, json=body)) == message, body
        if isinstance(body, dict) and body.get("name") == "x":
            assert bad(client.put(f"{DATASETS}/{ds}", json=body)) == message, body
            assert bad(client.patch(f"{DATASETS}/{ds}", json=body)) == message, body
    for body, message in PATCH_MESSAGES:
        assert bad(client.patch(f"{DATASETS}/{ds}", json=body)) == message, body
    # PATCH may blank a name PUT and POST require
    assert client.patch(f"{DATASETS}/{ds}", json={"name": ""}).status_code == 200
    assert client.get(DATASETS).json()[ds]["version"] == "1.0.1"
    assert Dataset.name.type.length == cat.MAX_NAME  # the bound is the column's


BATCH_MESSAGES = [
    ({"status": "nonsense"}, f"Invalid request: status: Input should be {STATUSES}"),
    ({"status": 3}, f"Invalid request: status: Input should be {STATUSES}"),
    ({"inputFormat": "json"}, "Invalid request: inputFormat: Input should be a valid dictionary or instance of "
     "InputFormat"),
    ({"inputFormat": {"format": "json", "charset": "EBCDIC"}},
     "Invalid request: inputFormat.charset: Input should be 'US-ASCII', 'UTF-8' or 'ISO-8859-1'"),
    ({"inputFormat": {"format": "xml"}}, "Unsupported inputFormat.format 'xml': this server ingests json or parquet."),
    ({"inputFormat": {}}, "'inputFormat.format' is required: json or parquet."),
    ({"relatedObjects": "x"}, "Invalid request: relatedObjects: Input should be a valid list"),
    ({"relatedObjects": ["x"]}, "Invalid request: relatedObjects[0]: Input should be a valid dictionary or instance "
     "of RelatedObject"),
    ({"relatedObjects": [{"type": "table", "id": "x"}]}, "Invalid request: relatedObjects[0].type: Input should be "
     "'batch', 'dataSet', 'dataSetFile', 'dataSetView' or 'transform'"),
    ({"tags": {"a": "b"}}, "Invalid request: tags.a: Input should be a valid list"),
    ({"started": "yesterday"},
     "Invalid request: started: Input should be a valid integer, unable to parse string as an integer"),
    ({"started": -1}, "Invalid request: started: Input should be greater than or equal to 0"),
    ({"replay": "r"}, "Invalid request: replay: Input should be a valid dictionary or instance of Replay"),
    ({"availableDates": 1},
     "Invalid request: availableDates: Input should be a valid dictionary or instance of AvailableDates"),
    ({"errors": ["e"]}, "Invalid request: errors[0]: Input should be a valid dictionary or instance of BatchErrorItem"),
    ({"datasetId": 5}, "Invalid request: datasetId: Input should be a valid string"),
]


def test_batch_mistakes_keep_their_messages(client):
    ds = create_dataset(client)
    b = create_batch(client, ds)
    for change, message in BATCH_MESSAGES:
        body = {"relatedObjects": [{"type": "dataSet", "id": ds}], **change}
        assert bad(client.post(BATCHES, json=body)) == message, change
        assert bad(client.post(f"{BATCHES}/new-{len(message)}", json=body)) == message, change
        assert bad(client.patch(f"{BATCHES}/{b}", json=change)) == message, change
        assert bad(client.put(f"{BATCHES}/{b}", json=dict(change, status=change.get("status", "loading")))) == message
    for body in ([1], "x"):
        assert bad(client.post(BATCHES, json=body)) == "Request body must be a JSON object naming the batch's dataset."
        assert bad(client.patch(f"{BATCHES}/{b}", json=body)) == "Request body must be a JSON object."
        assert bad(client.put(f"{BATCHES}/{b}", json=body)) == "Request body must be a JSON object."
    assert bad(client.post(BATCHES, json={"datasetId": ds, "status": "success"})) == (
        "A new batch starts 'loading', not 'success': upload its files, then move it to 'processing' (or POST "
        "/data/foundation/import/batches/{id}?action=COMPLETE).")
    assert bad(client.put(f"{BATCHES}/{b}", json={"tags": {}})) == (
        "'status' is required when a batch is replaced (PUT); PATCH changes single attributes.")
    assert bad(client.put(f"{BATCHES}/{b}", json={"status": None})) == (
        "'status' is required when a batch is replaced (PUT); PATCH changes single attributes.")
    assert bad(client.post(f"{BATCHES}/_x", json={"datasetId": ds})) == (
        "A batch id is 1 to 64 letters, digits, '_' or '-', starting with a letter or digit.")
    assert bad(client.patch(f"{BATCHES}/{b}", json={"status": "success"})) == (
        f"Batch {b} cannot move from 'loading' to 'success': a loading batch moves only to aborted, failed, processing.")
    assert client.get(BATCHES, params={"dataSet": ds}).json().keys() == {b}


def test_ignored_members_are_named_and_kept_ones_are_not(client, ctx):
    """Members a dataset does not keep are named in x-upstack-warning (and the journal); `schemaRef` and
    `fileDescription` are kept as sent, so their members the spec does not name are not ignored, nor named.
    UPSTACK_STRICT_MEMBERS refuses unknown members, never the spec's members this server only checks."""
    body = {"name": "people", "nmae": "typo", "enableErrorDiagnostics": True, "observableSchema": {},
            "schemaRef": {"id": "https://ns.adobe.com/acme/schemas/person", "contentType": "x", "version": "1"},
            "fileDescription": {"persisted": True, "format": "json", "x": {"y": 1}}, "dataSourceId": 5}
    r = client.post(DATASETS, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["x-upstack-warning"] == ("ignored member(s): nmae, dataSourceId, enableErrorDiagnostics, "
                                              "observableSchema")
    ds = r.json()[0].split("/")[-1]
    view = client.get(f"{DATASETS}/{ds}").json()[ds]
    assert view["schemaRef"] == body["schemaRef"] and view["fileDescription"] == body["fileDescription"]
    assert list(view["fileDescription"]) == ["persisted", "format", "x"]  # as sent, in its order
    assert not {"nmae", "dataSourceId", "enableErrorDiagnostics", "observableSchema"} & set(view)
    r = client.patch(f"{DATASETS}/{ds}", json={"description": "d", "fileDescription": {"persisted": False}})
    assert r.status_code == 200 and "x-upstack-warning" not in r.headers
    logged = client.get("/_upstack/requests", params={"method": "POST", "path": DATASETS}).json()["requests"]
    assert logged[-1]["warning"] == "ignored member(s): nmae, dataSourceId, enableErrorDiagnostics, observableSchema"

    b = {"datasetId": ds, "whatever": 1, "inputFormat": {"format": "json", "delimiter": ","}, "metrics": {},
         "relatedObjects": [{"type": "transform", "id": "t", "status": "success"}], "replay": {"z": 1}}
    r = client.post(BATCHES, json=b)
    assert r.status_code == 201, r.text
    assert r.headers["x-upstack-warning"] == ("ignored member(s): whatever, replay.z, metrics, "
                                              "relatedObjects[0].status, inputFormat.delimiter")
    r = client.patch(f"{BATCHES}/{r.json()[0].split('/')[-1]}", json={"size": 3, "recordCount": 1})
    assert r.status_code == 200 and r.headers["x-upstack-warning"] == "ignored member(s): recordCount"

    ctx.settings.strict_members = True
    detail = bad(client.post(DATASETS, json=body))
    assert detail.startswith("Unknown member(s): nmae, dataSourceId. ") and "UPSTACK_STRICT_MEMBERS" in detail
    assert bad(client.post(BATCHES, json=b)).startswith("Unknown member(s): whatever, replay.z. ")
    r = client.post(DATASETS, json={k: v for k, v in body.items() if k not in ("nmae", "dataSourceId")})
    assert r.status_code == 201 and r.headers["x-upstack-warning"] == (
        "ignored member(s): enableErrorDiagnostics, observableSchema")


HOSTILE = [
    {"name": "x", "description": "d" * 10_001},
    {"name": "x", "tags": {f"t{i}": ["v"] for i in range(101)}},
    {"name": "x", "tags": {"t": ["v"] * 1_001}},
    {"name": "x", "tags": {"t" * 256: ["v"]}},
    {"name": "x", "tags": {"t": ["v" * 1_001]}},
    {"name": "x", "classification": {f"k{i}": i for i in range(1_001)}},
    {"name": "x", "schemaRef": {"id": "s" * 2_049}},
    {"name": "x", "fileDescription": {"quotes": ['"'] * 101}},
    {"name": "x", "fileDescription": {"nullMarkers": ["n" * 65]}},
    {"name": "x", "basePath": "p" * 2_049},
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_oversized_dataset_members_are_refused(client, body):
    detail = bad(client.post(DATASETS, json=body))
    assert detail.startswith("Invalid request: ") and ("at most" in detail), detail
    assert client.get(DATASETS).json() == {}


def test_oversized_batch_members_and_deep_bodies_are_refused(client):
    ds = create_dataset(client)
    for change in ({"externalId": "e" * 1_001}, {"tags": {f"t{i}": [] for i in range(101)}},
                   {"relatedObjects": [{"type": "transform", "id": "t"}] * 101}, {"size": 2**63},
                   {"replay": {"predecessors": ["p"] * 1_001}}, {"metrics": {f"m{i}": 0 for i in range(1_001)}}):
        detail = bad(client.post(BATCHES, json={"datasetId": ds, **change}))
        assert detail.startswith("Invalid request: "), (change, detail)
    deep: dict = {"name": "x"}
    for _ in range(70):
        deep = {"classification": deep}
    assert bad(client.post(DATASETS, json=dict(deep, name="x")))
    assert bad(client.post(BATCHES, json={"datasetId": ds, "metrics": deep}))
    assert client.get(BATCHES).json() == {}


def test_answers_fit_the_declared_models(client, run_jobs):
    """What the routes answer (api/views.py) is what /openapi.json declares (schemas/catalog.py): datasets
    fresh, changed and with batches; batches loading, ingested with rejected rows, failed, aborted, and
    written by an export job."""
    ds = create_dataset(client)
    bare = client.post(DATASETS, json={"name": "bare"}).json()[0].split("/")[-1]
    client.patch(f"{DATASETS}/{ds}", json={"description": "d", "classification": {"dataBehavior": "record"},
                                           "namespace": "ns", "fileDescription": {"format": "json", "p": 1}})
    ingest(client, run_jobs, ds, {"a.json": json_lines([person(1), {"not": "a person"}])})
    failed = create_batch(client, ds)
    complete(client, failed, "FAIL")
    aborted = client.post(BATCHES, json={"datasetId": ds, "externalId": "e", "tags": {"t": ["1"]}, "size": 3,
                                         "replay": {"predecessors": ["p"], "reason": "r"},
                                         "availableDates": {"startDate": 1, "endDate": 2}}).json()[0].split("/")[-1]
    assert client.patch(f"{BATCHES}/{aborted}", json={"status": "aborted"}).status_code == 200
    loading = create_batch(client, ds, multiline=True)
    assert upload(client, loading, ds, "b.json", json_lines([person(2)])).status_code == 200
    union = create_dataset(client, "target", schema=UNION)
    r = client.post("/data/core/ups/export/jobs", json={"destination": {"datasetId": union},
                                                       "schema": {"name": "_xdm.context.profile"}})
    assert r.status_code == 200, r.text
    run_jobs()

    datasets = cat.CatalogDataSets.model_validate(client.get(DATASETS).json()).root
    assert datasets.keys() == {ds, bare, union} and datasets[ds].lastBatchStatus == "loading"
    assert cat.CatalogDataSets.model_validate(client.get(f"{DATASETS}/{bare}").json()).root[bare].lastBatchId is None
    assert all(set(DATASET_ALWAYS) <= d.model_fields_set for d in datasets.values())
    batches = cat.CatalogBatches.model_validate(client.get(BATCHES).json()).root
    assert all(set(BATCH_ALWAYS) <= b.model_fields_set and b.id is None for b in batches.values())
    statuses = sorted(b.status for b in batches.values())
    assert statuses == ["aborted", "failed", "loading", "success", "success"], statuses
    assert any(b.errors for b in batches.values() if b.status == "success")
    assert any("exportJobId" in b.tags for b in batches.values())
    assert batches[aborted].availableDates.endDate == 2 and batches[aborted].replay.reason == "r"
    narrowed = client.get(BATCHES, params={"properties": "status,size"}).json()
    assert {b.status for b in cat.CatalogBatches.model_validate(narrowed).root.values()} == set(statuses)
    assert cat.CatalogDataSets.model_validate(client.get(DATASETS, params={"properties": "name"}).json()).root
    for b in batches:
        assert cat.CatalogBatches.model_validate(client.get(f"{BATCHES}/{b}").json()).root[b].id == b
    for r in (client.post(DATASETS, json={"name": "n"}), client.put(f"{DATASETS}/{bare}", json={"name": "m"}),
              client.post(BATCHES, json={"datasetId": ds}), client.delete(f"{BATCHES}/{failed}"),
              client.delete(f"{DATASETS}/{bare}")):
        assert r.status_code in (200, 201), r.text
        cat.CatalogRefs.model_validate(r.json())
    # the Batch Ingestion view of a batch is another family's answer; Catalog's shows the same batch
    imported = client.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": "parquet"}})
    bid = imported.json()["id"]
    assert cat.CatalogBatches.model_validate(client.get(f"{BATCHES}/{bid}").json()).root[bid].inputFormat.format == (
        "parquet")


def test_other_tenants_objects_are_404_before_their_bodies_are_used(client):
    ds = create_dataset(client)
    other = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})
    r = client.patch(f"{DATASETS}/{ds}", json={"description": "theirs"}, headers=other)
    assert r.status_code == 404 and r.json()["detail"] == "DataSet not found."
    r = client.put(f"{DATASETS}/{ds}", json={"name": "theirs"}, headers=other)
    assert r.status_code == 404
    assert client.get(f"{DATASETS}/{ds}").json()[ds]["version"] == "1.0.0"
