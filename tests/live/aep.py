"""The export loop as a client drives it over HTTP (CONTRACT.md routes), for the live suites."""

from __future__ import annotations

import io
import time

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
EXPORT = "/data/foundation/export"
UPS = "/data/core/ups"
PROFILE_SCHEMA = "https://ns.adobe.com/xdm/context/profile"
UNION_SCHEMA = "https://ns.adobe.com/xdm/context/profile__union"
EVENT_SCHEMA = "https://ns.adobe.com/xdm/context/experienceevent"


def aep_headers(org: str, sandbox: str = "prod") -> dict[str, str]:
    """Exactly the four headers an AEP client sends."""
    return {"Authorization": "Bearer live-test-token", "x-api-key": "live-test-key", "x-gw-ims-org-id": org,
            "x-sandbox-name": sandbox}


def create_dataset(api: httpx.Client, name: str, schema_id: str = PROFILE_SCHEMA, *, profile: bool = True) -> str:
    body: dict = {"name": name, "schemaRef": {"id": schema_id,
                                              "contentType": "application/vnd.adobe.xed-full+json;version=1"}}
    if profile:
        body["tags"] = {"unifiedProfile": ["enabled:true"]}
    r = api.post(f"{CATALOG}/dataSets", json=body)
    assert r.status_code == 201, r.text
    ref = r.json()[0]
    assert ref.startswith("@/dataSets/") and r.headers["location"].endswith(ref[len("@/dataSets/"):])
    return ref.split("/")[-1]


def profile_record(i: int, **attrs) -> dict:
    return {"identityMap": {"email": [{"id": f"person{i}@example.com", "primary": True}]},
            "person": {"name": {"firstName": f"First{i}", "lastName": f"Last{i}"}}, **attrs}


def json_lines(records) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def start_batch(api: httpx.Client, dataset_id: str, fmt: str = "json") -> str:
    r = api.post(f"{IMPORT}/batches", json={"datasetId": dataset_id, "inputFormat": {"format": fmt}})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "loading"
    return r.json()["id"]


def upload(api: httpx.Client, batch_id: str, dataset_id: str, name: str, data: bytes) -> None:
    r = api.put(f"{IMPORT}/batches/{batch_id}/datasets/{dataset_id}/files/{name}", content=data,
                headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 200, r.text


def complete(api: httpx.Client, batch_id: str) -> None:
    r = api.post(f"{IMPORT}/batches/{batch_id}", params={"action": "COMPLETE"})
    assert r.status_code == 200, r.text


def ingest(api: httpx.Client, dataset_id: str, data: bytes, name: str = "part-1.json") -> str:
    """Open a batch, upload one JSON-lines file, complete it; returns the batch id (not waited for)."""
    batch_id = start_batch(api, dataset_id)
    upload(api, batch_id, dataset_id, name, data)
    complete(api, batch_id)
    return batch_id


def get_batch(api: httpx.Client, batch_id: str) -> dict:
    r = api.get(f"{CATALOG}/batches/{batch_id}")
    assert r.status_code == 200, r.text
    return r.json()[batch_id]


def wait_batch(api: httpx.Client, batch_id: str, timeout: float = 60.0) -> dict:
    """Poll the Catalog batch until it leaves loading/processing; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        batch = get_batch(api, batch_id)
        if batch["status"] not in ("loading", "processing"):
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch['status']} after {timeout:.0f} s"
        time.sleep(0.1)


def batch_files(api: httpx.Client, batch_id: str) -> list[dict]:
    r = api.get(f"{EXPORT}/batches/{batch_id}/files")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["_page"]["count"] == len(body["data"])
    return body["data"]


def file_parts(api: httpx.Client, file_id: str) -> list[dict]:
    r = api.get(f"{EXPORT}/files/{file_id}")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def download(api: httpx.Client, file_id: str, name: str, **headers: str) -> httpx.Response:
    return api.get(f"{EXPORT}/files/{file_id}", params={"path": name}, headers=headers, timeout=120)


def read_batch(api: httpx.Client, batch_id: str) -> pa.Table:
    """Every Parquet part of every file of a batch, downloaded through Data Access, as one table."""
    tables = []
    for f in batch_files(api, batch_id):
        for part in file_parts(api, f["dataSetFileId"]):
            r = download(api, f["dataSetFileId"], part["name"])
            assert r.status_code == 200, r.text
            assert len(r.content) == int(part["length"])
            tables.append(pq.read_table(io.BytesIO(r.content)))
    assert tables, f"batch {batch_id} has no files"
    return pa.concat_tables(tables, promote_options="default")


def wait_export_job(api: httpx.Client, job_id: int, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(f"{UPS}/export/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        assert job["status"] in ("NEW", "PROCESSING"), job
        assert time.monotonic() < deadline, f"export job {job_id} still {job['status']} after {timeout:.0f} s"
        time.sleep(0.2)
