"""Small profile and event record sets loaded the way a client loads them, and exports read back.

`Loader.ingest` goes through Batch Ingestion over HTTP when the app has that router; otherwise it
writes the batch into the lake and Catalog directly (as the ingest job would), so export tests can run
before ingestion exists.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.profiles.lakes import clean  # noqa: F401  (re-exported for the API tests)

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
DATA_ACCESS = "/data/foundation/export"
JOBS = "/data/core/ups/export/jobs"
MP = "/data/core/ups/config/mergePolicies"
ENTITIES = "/data/core/ups/access/entities"
PROFILE = {"schema.name": "_xdm.context.profile"}  # the query every profile lookup carries
PROFILE_SCHEMA = "https://ns.adobe.com/acme/schemas/person"
EVENT_SCHEMA = "https://ns.adobe.com/acme/schemas/experienceevent-web"
UNION = "https://ns.adobe.com/xdm/context/profile__union"


def idmap(*pairs: tuple[str, str], primary: str | None = None) -> dict:
    """identityMap from (namespace, id) pairs; the first is primary unless `primary` names another id."""
    out: dict[str, list[dict]] = {}
    for i, (ns, ident) in enumerate(pairs):
        is_primary = ident == primary if primary is not None else i == 0
        out.setdefault(ns, []).append({"id": ident, "primary": is_primary})
    return out


def create_dataset(client, name: str, schema: str = PROFILE_SCHEMA, *, enabled: bool = True, headers=None) -> str:
    body = {"name": name, "schemaRef": {"id": schema, "contentType": "application/vnd.adobe.xed+json;version=1"}}
    if enabled:
        body["tags"] = {"unifiedProfile": ["enabled:true"]}
    r = client.post(f"{CATALOG}/dataSets", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()[0].split("/")[-1]


def union_dataset(client, name: str = "Profile Data Export", headers=None) -> str:
    return create_dataset(client, name, UNION, enabled=False, headers=headers)


def has_routes(client, prefix: str) -> bool:
    return any(p.startswith(prefix) for p in client.app.openapi()["paths"])


class Loader:
    def __init__(self, client, ctx, run_jobs):
        self.client, self.ctx, self.run_jobs = client, ctx, run_jobs
        self.http = has_routes(client, IMPORT)

    def ingest(self, dataset_id: str, records: list[dict], *, kind: str = "profile", headers=None,
               legacy_layout: bool = False) -> str:
        """One batch of `records`; `legacy_layout` writes it straight into the lake with identityMap as the
        struct of namespace lists that lakes held before the map layout (as an older upstack left them)."""
        if self.http and not legacy_layout:
            return self._ingest_http(dataset_id, records, headers)
        return self._ingest_direct(dataset_id, records, kind, headers, legacy_layout)

    def _ingest_http(self, dataset_id: str, records: list[dict], headers) -> str:
        c = self.client
        r = c.post(f"{IMPORT}/batches", json={"datasetId": dataset_id, "inputFormat": {"format": "json"}},
                   headers=headers)
        assert r.status_code == 201, r.text
        batch = r.json()["id"]
        data = b"".join(json.dumps(rec).encode() + b"\n" for rec in records)
        r = c.put(f"{IMPORT}/batches/{batch}/datasets/{dataset_id}/files/records.json", content=data,
                  headers={"Content-Type": "application/octet-stream", **(headers or {})})
        assert r.status_code == 200, r.text
        assert c.post(f"{IMPORT}/batches/{batch}", params={"action": "COMPLETE"}, headers=headers).status_code == 200
        self.run_jobs()
        status = c.get(f"{CATALOG}/batches/{batch}", headers=headers).json()[batch]["status"]
        assert status == "success", status
        return batch

    def _ingest_direct(self, dataset_id: str, records: list[dict], kind: str, headers, legacy_layout: bool = False
                       ) -> str:
        from upstack.lake.parquet import write_table
        from upstack.lake.records import convert_file
        from upstack.storage.models import Batch, DatasetFile

        h = dict(self.client.headers, **(headers or {}))
        org, sandbox = h["x-gw-ims-org-id"], h.get("x-sandbox-name", "prod")
        batch, at = uuid.uuid4().hex, int(time.time() * 1000)
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "records.json"
            src.write_bytes(b"".join(json.dumps(rec).encode() + b"\n" for rec in records))
            converted = convert_file(src, "json", False, kind, batch_id=batch, ingest_time_ms=at, row_offset=0,
                                     file_name="records.json")
        assert not converted.failed, converted.failed
        table = converted.table
        if legacy_layout:
            at = table.schema.get_field_index("identityMap")
            as_struct = pa.array(table.column(at).to_pylist(maps_as_pydicts="strict"))  # one member per namespace
            table = table.set_column(at, "identityMap", as_struct)
            assert pa.types.is_struct(table.schema.field("identityMap").type)
        lake = self.ctx.lake
        staging = lake.new_staging(batch)
        write_table(table, staging, max_rows_per_file=1_000_000)
        files = lake.publish(staging, org, sandbox, dataset_id, batch, file_id=f"{batch}-1")
        with self.ctx.db.session() as s:
            s.add(Batch(id=batch, org=org, sandbox=sandbox, dataset_id=dataset_id, origin="ingestion", status="success",
                        input_format={"format": "json"}, created_ms=at, updated_ms=at, started_ms=at, completed_ms=at,
                        records_read=len(records), records_written=len(records), records_failed=0, errors=[]))
            s.add(DatasetFile(id=f"{batch}-1", org=org, sandbox=sandbox, batch_id=batch, dataset_id=dataset_id,
                              created_ms=at, records=len(records), size_bytes=sum(f.size for f in files)))
        return batch


def read_batch(client, ctx, batch_id: str, headers=None) -> pa.Table:
    """Every Parquet file of a batch: through Data Access when the app has it, else from the lake."""
    if has_routes(client, DATA_ACCESS):
        r = client.get(f"{DATA_ACCESS}/batches/{batch_id}/files", headers=headers)
        assert r.status_code == 200, r.text
        tables = []
        for f in r.json()["data"]:
            listing = client.get(f"{DATA_ACCESS}/files/{f['dataSetFileId']}", headers=headers).json()["data"]
            for item in listing:
                body = client.get(f"{DATA_ACCESS}/files/{f['dataSetFileId']}", params={"path": item["name"]},
                                  headers=headers)
                assert body.status_code == 200, body.text
                tables.append(pq.read_table(io.BytesIO(body.content)))
        return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    from upstack.storage import catalog_repo
    from upstack.tenant import Tenant

    h = dict(client.headers, **(headers or {}))
    t = Tenant(h["x-gw-ims-org-id"], h.get("x-sandbox-name", "prod"))
    with ctx.db.session() as s:
        b = catalog_repo.get_batch(s, t, batch_id)
        files = catalog_repo.files_of_batch(s, t, batch_id)
    tables = [pq.read_table(p.path) for f in files
              for p in ctx.lake.published_files(t.org, t.sandbox, b.dataset_id, batch_id) if f.id == p.file_id]
    return pa.concat_tables(tables) if tables else pa.table({})


# Hand-checked world: Ann is split over two datasets and linked to her browser by CRMID c1 <-> ECID e1.
CRM = [
    {"identityMap": idmap(("Email", "ann@x.com"), ("CRMID", "c1")),
     "person": {"name": {"firstName": "Ann", "lastName": "Lee"}}, "personalEmail": {"address": "ann@x.com"},
     "extSourceSystemAudit": {"lastUpdatedDate": "2024-01-01T00:00:00Z"},
     "segmentMembership": {"ups": {"seg1": {"status": "realized", "lastQualificationTime": "2024-01-05T00:00:00Z"}}}},
    {"identityMap": idmap(("Email", "bob@x.com")), "person": {"name": {"firstName": "Bob", "lastName": "Ray"}},
     "extSourceSystemAudit": {"lastUpdatedDate": "2024-01-01T00:00:00Z"},
     "segmentMembership": {"ups": {"seg2": {"status": "existing", "lastQualificationTime": "2024-02-05T00:00:00Z"}}}},
    {"identityMap": idmap(("Email", "cy@x.com")), "person": {"name": {"firstName": "Cy"}},
     "segmentMembership": {"ups": {"seg1": {"status": "exited", "lastQualificationTime": "2024-03-05T00:00:00Z"}}}},
]
LOYALTY = [
    {"identityMap": idmap(("CRMID", "c1"), ("ECID", "e1")), "person": {"name": {"firstName": "Annie"}},
     "mobilePhone": {"number": "555-0100"}, "extSourceSystemAudit": {"lastUpdatedDate": "2024-02-01T00:00:00Z"}},
]
WEB = [
    {"_id": "ev1", "timestamp": "2024-03-02T10:00:00Z", "identityMap": idmap(("ECID", "e1")),
     "environment": {"browserDetails": {"name": "Firefox", "version": "120"}}},
    {"_id": "ev2", "timestamp": "2024-03-01T10:00:00Z", "identityMap": idmap(("ECID", "e1")),
     "environment": {"browserDetails": {"name": "Chrome", "version": "119"}}},
    {"_id": "ev3", "timestamp": "2024-03-03T10:00:00Z", "identityMap": idmap(("ECID", "e9")),
     "environment": {"browserDetails": {"name": "Safari"}}},
]


def load_world(client, ctx, run_jobs) -> dict[str, str]:
    """CRM, LOYALTY and WEB loaded as a client would, plus a pdg + timestampOrdered policy ("pdg")."""
    load = Loader(client, ctx, run_jobs)
    ids = {"crm": create_dataset(client, "crm"), "loyalty": create_dataset(client, "loyalty"),
           "web": create_dataset(client, "web", EVENT_SCHEMA)}
    load.ingest(ids["crm"], CRM)
    load.ingest(ids["loyalty"], LOYALTY)
    load.ingest(ids["web"], WEB, kind="event")
    r = client.post(MP, json={"name": "stitched", "schema": {"name": "_xdm.context.profile"},
                              "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "timestampOrdered"}})
    assert r.status_code == 200, r.text
    ids["pdg"] = r.json()["id"]
    return ids
