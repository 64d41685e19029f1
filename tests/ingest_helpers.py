"""Helpers for tests that load data through Batch Ingestion and read it back through Data Access."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

IMPORT = "/data/foundation/import"
EXPORT = "/data/foundation/export"
CATALOG = "/data/foundation/catalog"
PROFILE_SCHEMA = "https://ns.adobe.com/acme/schemas/person"
EVENT_SCHEMA = "https://ns.adobe.com/acme/schemas/experienceevent-web"
UNION = "https://ns.adobe.com/xdm/context/profile__union"
OCTET = {"Content-Type": "application/octet-stream"}


def person(i: int, **extra) -> dict:
    """A profile record with nested XDM (person.name, homeAddress) and an email identity."""
    rec = {
        "identityMap": {"Email": [{"id": f"p{i}@example.com", "primary": True}]},
        "person": {"name": {"firstName": f"First{i}", "lastName": f"Last{i}"}},
        "homeAddress": {"city": "Basel", "postalCode": f"40{i:02d}"},
    }
    rec.update(extra)
    return rec


def event(i: int, **extra) -> dict:
    rec = {"_id": f"e{i}", "timestamp": f"2024-01-0{1 + i % 9}T10:00:00Z",
           "identityMap": {"ECID": [{"id": f"ecid{i}"}]},
           "web": {"webPageDetails": {"name": f"page{i}"}}}
    rec.update(extra)
    return rec


def json_lines(records: list) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def parquet_bytes(records: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), sink)
    return sink.getvalue()


def create_dataset(client, name="people", schema=PROFILE_SCHEMA, headers=None) -> str:
    body = {"name": name, "schemaRef": {"id": schema, "contentType": "application/vnd.adobe.xed+json;version=1"},
            "tags": {"unifiedProfile": ["enabled:true"]}}
    r = client.post(f"{CATALOG}/dataSets", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()[0].split("/")[-1]


def create_batch(client, dataset_id: str, fmt="json", multiline=False, headers=None) -> str:
    r = client.post(f"{IMPORT}/batches", json={"datasetId": dataset_id,
                                               "inputFormat": {"format": fmt, "isMultiLineJson": multiline}},
                    headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def upload(client, batch_id: str, dataset_id: str, name: str, data: bytes, headers=None):
    return client.put(f"{IMPORT}/batches/{batch_id}/datasets/{dataset_id}/files/{name}", content=data,
                      headers={**OCTET, **(headers or {})})


def complete(client, batch_id: str, action="COMPLETE", headers=None):
    return client.post(f"{IMPORT}/batches/{batch_id}", params={"action": action}, headers=headers)


def batch(client, batch_id: str, headers=None) -> dict:
    r = client.get(f"{CATALOG}/batches/{batch_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()[batch_id]


def ingest(client, run_jobs, dataset_id: str, files: dict[str, bytes], fmt="json", multiline=False) -> str:
    """Create a batch, upload `files`, complete it and run the ingest job; returns the batch id."""
    b = create_batch(client, dataset_id, fmt, multiline)
    for name, data in files.items():
        assert upload(client, b, dataset_id, name, data).status_code == 200
    assert complete(client, b).status_code == 200
    run_jobs()
    return b
