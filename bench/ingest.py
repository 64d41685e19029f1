"""`python -m bench ingest`: records/s of one ingest worker for Parquet and for JSON lines, same records.

In-process and through the real path: a batch is created, its files uploaded (`Lake.write_upload`) and
COMPLETEd, then one `Worker` runs the queued ingest job in this thread. The rate is records over the
batch's Catalog time (COMPLETE to success, which here is the job's run since nothing else is queued).
Formats alternate run by run; medians are quoted.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from bench.common import ORG, SANDBOX, BenchFailure, median, run_dir, say, settings_for, write_json

TARGETS = {"parquet": 300_000, "json": 100_000}  # json: issue 12, one worker


def _rfc3339(arr: pa.Array) -> pa.Array:
    """Timestamps as RFC 3339 text (what a JSON client sends), recursing through structs and lists."""
    t = arr.type
    if pa.types.is_timestamp(t):
        utc = arr if t.tz else pc.assume_timezone(arr, "UTC")
        return pc.strftime(pc.cast(utc, pa.timestamp("ms", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_struct(t):
        children = [_rfc3339(arr.field(i)) for i in range(t.num_fields)]
        return pa.StructArray.from_arrays(children, names=[f.name for f in t], mask=arr.is_null())
    if pa.types.is_list(t):
        return pa.ListArray.from_arrays(arr.offsets, _rfc3339(arr.values), mask=arr.is_null())
    return arr


def to_json_lines(table: pa.Table) -> bytes:
    """One JSON object per line, written by DuckDB (columnar, no Python per record)."""
    table = pa.table({name: _rfc3339(col.combine_chunks()) for name, col in zip(table.column_names, table.columns,
                                                                               strict=True)})
    con = duckdb.connect()
    try:
        con.register("t", table)
        rows = con.sql("SELECT CAST(to_json(t) AS VARCHAR) AS j FROM t").to_arrow_table().column(0)
    finally:
        con.close()
    return ("\n".join(rows.to_pylist()) + "\n").encode()


def _records(args) -> pa.Table:
    from upstack.seed.generate import SeedSpec, events, fragments

    if args.kind == "event":
        spec = SeedSpec(profiles=args.records, fragments_per_profile=1, datasets=1, events_per_profile=1,
                        seed=args.seed)
        return events(spec, 0, args.records)
    spec = SeedSpec(profiles=args.records, fragments_per_profile=1, datasets=1, seed=args.seed)
    return fragments(spec, 0, 0, args.records)


def _one_batch(ctx, tenant, dataset_id: str, fmt: str, files: list[bytes]) -> dict[str, Any]:
    from upstack.schemas.ingestion import CreateImportBatch
    from upstack.services import ingestion
    from upstack.storage.models import Batch
    from upstack.worker.ingest import IngestHandler
    from upstack.worker.loop import Worker

    body = CreateImportBatch.model_validate({"datasetId": dataset_id, "inputFormat": {"format": fmt}})
    with ctx.db.session() as s:
        batch_id = ingestion.create_batch(s, tenant, body).id
    for n, data in enumerate(files):
        with ctx.db.session() as s:
            b, rel = ingestion.check_upload(s, tenant, batch_id, dataset_id, f"part-{n:04d}.{fmt}")
        pending = ingestion.receive_upload(ctx.lake, b, rel, memoryview(data), ctx.settings.max_upload_bytes)
        with pending, ctx.db.session() as s:
            ingestion.accept_upload(s, tenant, batch_id, pending)
    worker = Worker(ctx, {"ingest": IngestHandler()}, name=f"bench-ingest-{fmt}")
    worker._register()
    with ctx.db.session() as s:
        ingestion.complete(s, tenant, ctx.settings, ingestion.get_batch(s, tenant, batch_id))
    start = time.perf_counter()
    if not worker.run_once():
        raise BenchFailure("the ingest job was not claimed")
    wall = time.perf_counter() - start
    worker._deregister()
    with ctx.db.session() as s:
        b = s.get(Batch, batch_id)
        status, written, failed, catalog_ms = b.status, b.records_written, b.records_failed, b.completed_ms - b.started_ms
    if status != "success" or failed:
        raise BenchFailure(f"{fmt} batch {batch_id} ended {status} with {failed} failed records")
    return {"format": fmt, "batch": batch_id, "records": written, "catalog_s": catalog_ms / 1000,
            "wall_s": round(wall, 3), "records_per_s": round(written / max(catalog_ms / 1000, 1e-3), 1)}


def main(args) -> int:
    from upstack.context import AppContext
    from upstack.schemas.catalog import CatalogDataSetRequest
    from upstack.seed.load import to_parquet_bytes
    from upstack.services import catalog
    from upstack.storage.migrate import upgrade
    from upstack.tenant import Tenant

    out = run_dir(f"ingest-{args.records}")
    say(f"bench ingest: {args.records:,} {args.kind} records, files of {args.file_records:,}, {args.runs} run(s) "
        f"per format; output {out}")
    table = _records(args)
    parts = [table.slice(at, args.file_records) for at in range(0, table.num_rows, args.file_records)]
    t0 = time.perf_counter()
    payload = {"parquet": [to_parquet_bytes(p).to_pybytes() for p in parts]}
    t1 = time.perf_counter()
    payload["json"] = [to_json_lines(p) for p in parts]
    t2 = time.perf_counter()
    sizes = {k: sum(len(b) for b in v) for k, v in payload.items()}
    say(f"prepared: Parquet {sizes['parquet'] / 1e6:,.0f} MB in {t1 - t0:.1f} s, JSON lines "
        f"{sizes['json'] / 1e6:,.0f} MB in {t2 - t1:.1f} s")
    del table, parts

    settings = settings_for(out / "data")
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    ctx = AppContext.create(settings)
    tenant = Tenant(ORG, SANDBOX)
    schema = "https://ns.adobe.com/xdm/context/experienceevent" if args.kind == "event" else \
        "https://ns.adobe.com/upstack/schemas/bench-profile"
    with ctx.db.session() as s:
        body = CatalogDataSetRequest.model_validate({"name": "bench ingest", "schemaRef": {"id": schema},
                                                     "tags": {"unifiedProfile": ["enabled:true"]}})
        dataset_id = catalog.create_dataset(s, tenant, body).id
    runs: dict[str, list[dict]] = {"parquet": [], "json": []}
    try:
        for k in range(args.runs):
            order = ("parquet", "json") if k % 2 == 0 else ("json", "parquet")
            for fmt in order:
                r = _one_batch(ctx, tenant, dataset_id, fmt, payload[fmt])
                runs[fmt].append(r)
                say(f"  run {k + 1} {fmt:8}: {r['records']:,} records in {r['catalog_s']:.2f} s "
                    f"= {r['records_per_s']:>10,.0f} records/s")
    finally:
        ctx.db.dispose()
    summary = {fmt: {"median_records_per_s": median(r["records_per_s"] for r in rs), "target": TARGETS[fmt],
                     "each": [r["records_per_s"] for r in rs]} for fmt, rs in runs.items()}
    write_json(out / "result.json", {"records": args.records, "kind": args.kind, "bytes": sizes, "runs": runs,
                                     "summary": summary})
    say("")
    for fmt, s in summary.items():
        verdict = "meets" if s["median_records_per_s"] >= s["target"] else "MISSES"
        say(f"{fmt:8} median {s['median_records_per_s']:>10,.0f} records/s per worker  (target >= "
            f"{s['target']:,}: {verdict})  each {[round(x) for x in s['each']]}")
    say(f"\nresult: {out / 'result.json'}")
    return 0
