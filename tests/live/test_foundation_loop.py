"""The export loop against a real `upstack serve` process (SQLite, one embedded worker), over HTTP, with
exactly the headers a client sends."""

from __future__ import annotations

import io

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from tests.live.aep import (
    CATALOG,
    EXPORT,
    UNION_SCHEMA,
    UPS,
    aep_headers,
    batch_files,
    create_dataset,
    download,
    file_parts,
    ingest,
    json_lines,
    profile_record,
    read_batch,
    wait_batch,
    wait_export_job,
)

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def test_ingest_list_download_and_delete(api):
    ds = create_dataset(api, "live profiles")
    good = [profile_record(i) for i in range(25)]
    bad = {"person": {"name": {"firstName": "NoIdentity"}}}  # a profile record needs an identityMap
    batch_id = ingest(api, ds, json_lines([*good[:10], bad, *good[10:]]))

    batch = wait_batch(api, batch_id)
    assert batch["status"] == "success", batch
    assert batch["relatedObjects"] == [{"type": "dataSet", "id": ds}]
    assert batch["metrics"]["recordsRead"] == 26
    assert batch["metrics"]["recordsWritten"] == 25
    assert batch["metrics"]["recordsFailed"] == 1

    # Data Access: the batch's files, one file's parts, the Parquet bytes.
    files = batch_files(api, batch_id)
    assert files and all(f["dataSetViewId"] == ds and f["isValid"] for f in files)
    file_id = files[0]["dataSetFileId"]
    parts = file_parts(api, file_id)
    assert parts and all(p["name"].endswith(".parquet") for p in parts)
    name, length = parts[0]["name"], int(parts[0]["length"])
    whole = download(api, file_id, name)
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/octet-stream"
    assert len(whole.content) == length
    table = read_batch(api, batch_id)
    assert table.num_rows == 25
    emails = sorted(row["email"][0]["id"] for row in table.column("identityMap").to_pylist(maps_as_pydicts="strict"))
    assert emails == sorted(f"person{i}@example.com" for i in range(25))
    assert pq.read_table(io.BytesIO(whole.content)).num_rows >= 1

    # Range requests and HEAD, as download managers and pyarrow's HTTP readers use them.
    head = download(api, file_id, name, Range="bytes=0-3")
    assert head.status_code == 206
    assert head.content == b"PAR1" == whole.content[:4]
    assert head.headers["content-range"] == f"bytes 0-3/{length}"
    tail = download(api, file_id, name, Range="bytes=-4")
    assert tail.status_code == 206 and tail.content == b"PAR1"
    h = api.head(f"{EXPORT}/files/{file_id}", params={"path": name})
    assert h.status_code == 200
    assert h.headers["content-length"] == str(length) and h.headers["accept-ranges"] == "bytes"
    assert download(api, file_id, name, Range=f"bytes={length}-{length + 9}").status_code == 416

    # The rejected row is readable at /failed, as JSON lines files.
    failed = api.get(f"{EXPORT}/batches/{batch_id}/failed")
    assert failed.status_code == 200, failed.text
    listing = failed.json()["data"]
    assert listing
    rows = []
    for entry in listing:
        r = api.get(f"{EXPORT}/batches/{batch_id}/failed", params={"path": entry["name"]})
        assert r.status_code == 200
        rows += [orjson.loads(line) for line in r.content.splitlines() if line.strip()]
    assert len(rows) == 1 and rows[0]["row"] is not None and "NoIdentity" in orjson.dumps(rows[0]).decode()

    # Preview: the first rows as JSON.
    preview = api.get(f"{EXPORT}/datasets/{ds}/preview")
    assert preview.status_code == 200, preview.text
    assert len(preview.json()["data"]) == 25

    # Deleting the dataset removes it, its batches and its files.
    assert api.delete(f"{CATALOG}/dataSets/{ds}").status_code == 200
    assert api.get(f"{CATALOG}/dataSets/{ds}").status_code == 404
    assert download(api, file_id, name).status_code == 404


def test_a_batch_of_only_bad_rows_fails(api):
    ds = create_dataset(api, "live bad rows")
    batch_id = ingest(api, ds, b'{"person": {"name": {"firstName": "x"}}}\nnot json at all\n')
    batch = wait_batch(api, batch_id)
    assert batch["status"] == "failed", batch
    assert batch["errors"]
    assert batch_files(api, batch_id) == []


def test_export_job_of_the_ingested_profiles(api):
    ds = create_dataset(api, "live export source")
    batch_id = ingest(api, ds, json_lines(profile_record(i) for i in range(12)))
    assert wait_batch(api, batch_id)["status"] == "success"

    policies = api.get(f"{UPS}/config/mergePolicies")
    assert policies.status_code == 200, policies.text
    default = next(p for p in policies.json()["children"] if p["default"])
    assert default["id"] == "timestampOrdered-none-mp"

    target = create_dataset(api, "live export target", UNION_SCHEMA, profile=False)
    r = api.post(f"{UPS}/export/jobs", json={
        "fields": "identityMap,person.name",
        "mergePolicy": {"id": default["id"], "version": default["version"]},
        "destination": {"datasetId": target, "segmentPerBatch": False},
        "schema": {"name": "_xdm.context.profile"},
    })
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["status"] == "NEW" and isinstance(created["id"], int)
    assert created["destination"]["batchId"]

    job = wait_export_job(api, created["id"])
    assert job["status"] == "SUCCEEDED", job
    assert job["metrics"]["totalExportedProfileCounter"] == 12
    export_batch = job["destination"]["batchId"]
    assert export_batch == created["destination"]["batchId"]
    assert wait_batch(api, export_batch)["status"] == "success"

    table = read_batch(api, export_batch)
    assert table.num_rows == 12
    assert {"identityMap", "person"} <= set(table.column_names)
    names = sorted(row["name"]["firstName"] for row in table.column("person").to_pylist(maps_as_pydicts="strict"))
    assert names == sorted(f"First{i}" for i in range(12))

    listed = api.get(f"{UPS}/export/jobs", params={"limit": 1000})
    assert listed.status_code == 200
    assert created["id"] in [j["id"] for j in listed.json()["records"]]


@pytest.mark.parametrize("drop,status,body", [
    ("Authorization", 403, {"error_code": "403010", "message": "Oauth token is missing."}),
    ("x-api-key", 403, {"error_code": "403000", "message": "Api Key is required"}),
    ("x-gw-ims-org-id", 400, {"error_code": "400003", "message": "Missing header"}),
])
def test_gateway_errors(live_server, org, drop, status, body):
    headers = {k: v for k, v in aep_headers(org).items() if k != drop}
    r = httpx.get(f"{live_server}{CATALOG}/dataSets", headers=headers, timeout=10)
    assert r.status_code == status
    assert r.json() == body


def test_service_error_shapes(api):
    r = api.get(f"{CATALOG}/dataSets/{'0' * 24}")
    assert r.status_code == 404
    assert {"type", "status", "title", "detail"} <= set(r.json()) and r.json()["status"] == 404
    assert r.headers.get("x-request-id")

    r = api.get(f"{UPS}/config/mergePolicies/no-such-policy")
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == 404 and body["requestId"] and "404" in body["errors"]

    r = api.post(f"{CATALOG}/dataSets", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_sandbox_defaults_to_prod_and_tenants_are_isolated(live_server, org):
    with httpx.Client(base_url=live_server, headers=aep_headers(org, "prod"), timeout=30) as prod:
        ds = create_dataset(prod, "live tenancy")
    no_sandbox = {k: v for k, v in aep_headers(org).items() if k != "x-sandbox-name"}
    assert httpx.get(f"{live_server}{CATALOG}/dataSets/{ds}", headers=no_sandbox).status_code == 200
    other = aep_headers("SOMEONEELSE@AdobeOrg")
    assert httpx.get(f"{live_server}{CATALOG}/dataSets/{ds}", headers=other).status_code == 404


def test_ims_token_endpoint(live_server, org):
    r = httpx.post(f"{live_server}/ims/token/v3", data={"grant_type": "client_credentials", "client_id": "live-client",
                                                       "client_secret": "secret", "scope": "openid,AdobeID"})
    assert r.status_code == 200, r.text
    token = r.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 86399 and token["access_token"]
    headers = {**aep_headers(org), "Authorization": f"Bearer {token['access_token']}", "x-api-key": "live-client"}
    assert httpx.get(f"{live_server}{CATALOG}/dataSets", headers=headers).status_code == 200


def test_health_needs_no_headers(live_server):
    r = httpx.get(f"{live_server}/_upstack/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["lake"] == "ok"
    assert body["liveWorkers"] == 2  # `--workers 1`: one user-lane thread and one background-lane thread
    assert sorted(w["lanes"] for w in body["workers"]) == [["background"], ["user"]]
