"""Load generated data through the real ingestion path: Catalog datasets, batches, uploads, COMPLETE, ingest jobs.

Nothing here writes the lake's published files or batch rows directly: each generated Parquet file is an
upload of its own batch, COMPLETE queues the `ingest` job, and a worker (embedded here, or a running
server's) converts and publishes it exactly as it would a client's file. So seeded data exercises the same
validation, system columns and Catalog bookkeeping as real data, and the ingest rate it reports is the
server's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from upstack.context import AppContext
from upstack.schemas.catalog import CatalogDataSetRequest
from upstack.schemas.ingestion import CreateImportBatch
from upstack.seed.generate import Chunk, SeedSpec, expected_counts, generate, plan
from upstack.services import catalog, ingestion
from upstack.storage.models import Batch
from upstack.tenant import Tenant

PROFILE_SCHEMA = "https://ns.adobe.com/upstack/schemas/seed-profile"
EVENT_SCHEMA = "https://ns.adobe.com/xdm/context/experienceevent"
UNION_SCHEMA = catalog.UNION_SCHEMA
PROFILE_ENABLED = {"unifiedProfile": ["enabled:true"]}
# Above this many fragments the exact expectation (a few int64 arrays per fragment) is not computed.
EXPECT_LIMIT = 50_000_000
FINAL = ("success", "failed", "aborted")


@dataclass
class BatchStats:
    total: int
    done: int = 0
    success: int = 0
    failed: int = 0
    records_written: int = 0
    records_failed: int = 0
    first_started_ms: int | None = None
    last_completed_ms: int | None = None
    busy_ms: int = 0  # time some batch was being processed, intervals merged


@dataclass
class SeedResult:
    org: str
    sandbox: str
    spec: dict[str, Any]
    profile_datasets: list[str]
    event_dataset: str
    export_dataset: str
    batches: list[str]
    records: int
    records_written: int
    records_failed: int
    failed_batches: list[str]
    seconds: float
    ingest_wall_records_per_s: float
    ingest_busy_records_per_s: float
    expected: dict[str, int] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=1)
    return sink.getvalue()


def create_datasets(ctx: AppContext, tenant: Tenant, spec: SeedSpec) -> tuple[list[str], str, str]:
    """D profile-enabled profile datasets, one profile-enabled event dataset, one profile__union export target."""
    tag = f"seed {spec.seed}"
    with ctx.db.session() as s:
        profiles = [catalog.create_dataset(s, tenant, CatalogDataSetRequest.model_validate({
            "name": f"{tag}: profiles {d + 1}/{spec.datasets}",
            "schemaRef": {"id": PROFILE_SCHEMA, "contentType": "application/vnd.adobe.xed+json;version=1"},
            "tags": PROFILE_ENABLED,
            "fileDescription": {"format": "parquet"},
        })).id for d in range(spec.datasets)]
        events = catalog.create_dataset(s, tenant, CatalogDataSetRequest.model_validate({
            "name": f"{tag}: experience events",
            "schemaRef": {"id": EVENT_SCHEMA, "contentType": "application/vnd.adobe.xed+json;version=1"},
            "tags": PROFILE_ENABLED,
            "fileDescription": {"format": "parquet"},
        })).id
        export = catalog.create_dataset(s, tenant, CatalogDataSetRequest.model_validate({
            "name": f"{tag}: profile export",
            "schemaRef": {"id": UNION_SCHEMA, "contentType": "application/vnd.adobe.xed+json;version=1"},
        })).id
    return profiles, events, export


def upload_chunk(ctx: AppContext, tenant: Tenant, dataset_id: str, chunk: Chunk, table: pa.Table) -> str:
    """One batch: create it and upload the chunk as one Parquet file (the batch stays `loading`)."""
    data = to_parquet_bytes(table)
    with ctx.db.session() as s:
        body = CreateImportBatch.model_validate({"datasetId": dataset_id, "inputFormat": {"format": "parquet"}})
        b = ingestion.create_batch(s, tenant, body)
        batch_id = b.id
    name = f"{chunk.kind}-{chunk.dataset:02d}-{chunk.start:012d}.parquet"
    with ctx.db.session() as s:
        b, rel = ingestion.check_upload(s, tenant, batch_id, dataset_id, name)
    pending = ingestion.receive_upload(ctx.lake, b, rel, memoryview(data), ctx.settings.max_upload_bytes)
    with pending, ctx.db.session() as s:
        ingestion.accept_upload(s, tenant, batch_id, pending)
    return batch_id


def complete_batch(ctx: AppContext, tenant: Tenant, batch_id: str) -> None:
    """COMPLETE: the batch moves to `processing` and its ingest job is queued."""
    with ctx.db.session() as s:
        ingestion.complete(s, tenant, ctx.settings, ingestion.get_batch(s, tenant, batch_id))


def batch_stats(ctx: AppContext, batch_ids: list[str]) -> BatchStats:
    """Where the batches are, from Catalog: how many are final, records written, and when ingest ran."""
    stats = BatchStats(total=len(batch_ids))
    if not batch_ids:
        return stats
    rows = []
    with ctx.db.session() as s:
        for at in range(0, len(batch_ids), 500):
            rows.extend(s.execute(select(Batch.status, Batch.records_written, Batch.records_failed, Batch.started_ms,
                                         Batch.completed_ms).where(Batch.id.in_(batch_ids[at:at + 500]))).all())
    intervals = []
    for status, written, failed, started, completed in rows:
        if status not in FINAL:
            continue
        stats.done += 1
        stats.success += status == "success"
        stats.failed += status != "success"
        stats.records_written += written or 0
        stats.records_failed += failed or 0
        if started and completed:
            intervals.append((started, completed))
    if intervals:
        stats.first_started_ms = min(a for a, _ in intervals)
        stats.last_completed_ms = max(b for _, b in intervals)
        stats.busy_ms = _busy_ms(intervals)
    return stats


def _busy_ms(intervals: list[tuple[int, int]]) -> int:
    """Ingest time a worker pool really spent: a batch's Catalog start is its COMPLETE (it may wait in the
    queue), so with batches finishing in order each one is counted from the later of its start and the
    previous batch's end. Exact for one worker; a lower bound of the work (so an upper bound of the per-worker
    rate) for several."""
    busy = 0
    last_end = None
    for start, end in sorted(intervals, key=lambda iv: iv[1]):
        begin = start if last_end is None else max(start, last_end)
        busy += max(0, end - begin)
        last_end = end
    return busy


def _batch_errors(ctx: AppContext, batch_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    with ctx.db.session() as s:
        for at in range(0, len(batch_ids), 500):
            for bid, status, errors in s.execute(select(Batch.id, Batch.status, Batch.errors)
                                                 .where(Batch.id.in_(batch_ids[at:at + 500]))):
                if status != "success" or errors:
                    out.append({"batchId": bid, "status": status, "errors": errors})
    return out


class _Display:
    """A rich progress bar on stderr (records ingested, batches done, records/s), or nothing."""

    def __init__(self, enabled: bool, records: int, batches: int):
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[batches]}"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task("records ingested", total=records, batches=f"0/{batches} batches",
                                           rate="")
        self.batches = batches
        self.progress.start()

    def update(self, stats: BatchStats, submitted: int, started: float) -> None:
        if self.progress is None:
            return
        elapsed = max(time.monotonic() - started, 1e-9)
        self.progress.update(self.task, completed=stats.records_written + stats.records_failed,
                             batches=f"{stats.done}/{self.batches} batches ({submitted} submitted)",
                             rate=f"{(stats.records_written + stats.records_failed) / elapsed:,.0f} records/s")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def seed(
    ctx: AppContext,
    tenant: Tenant,
    spec: SeedSpec,
    *,
    process: bool = True,
    workers: int = 1,
    progress: bool = False,
    timeout_s: float | None = None,
    hold: bool = False,
    on_chunk: Callable[[Chunk, str], None] | None = None,
) -> SeedResult:
    """Create the datasets, submit every generated file as a completed batch, and wait until all are ingested.

    With `process` the ingest jobs run on `workers` embedded worker threads started here (they ingest while
    later files are still being generated); without it, a server's workers on the same database and data
    dir must pick them up. With `hold`, every batch is uploaded first and all are completed together, so
    ingestion does not share the CPU with generation (benchmarks).
    """
    started = time.monotonic()
    expected = asdict(expected_counts(spec)) if spec.fragments <= EXPECT_LIMIT else None
    profile_ds, event_ds, export_ds = create_datasets(ctx, tenant, spec)
    chunks = plan(spec)
    display = _Display(progress, sum(c.records for c in chunks), len(chunks))
    pool = _start_workers(ctx, workers) if process else []
    batch_ids: list[str] = []
    try:
        for chunk in chunks:
            dataset_id = profile_ds[chunk.dataset] if chunk.kind == "profile" else event_ds
            batch_ids.append(upload_chunk(ctx, tenant, dataset_id, chunk, generate(spec, chunk)))
            if not hold:
                complete_batch(ctx, tenant, batch_ids[-1])
            if on_chunk is not None:
                on_chunk(chunk, batch_ids[-1])
            display.update(batch_stats(ctx, batch_ids), len(batch_ids), started)
        if hold:
            for batch_id in batch_ids:
                complete_batch(ctx, tenant, batch_id)
        stats = _wait(ctx, batch_ids, display, started, timeout_s)
    finally:
        for w in pool:
            w.stop_event.set()
        for w in pool:
            w.stop()
        display.close()
    seconds = time.monotonic() - started
    wall_ms = ((stats.last_completed_ms or 0) - (stats.first_started_ms or 0)) or 1
    records = stats.records_written + stats.records_failed
    errors = _batch_errors(ctx, batch_ids) if stats.failed or stats.records_failed else []
    return SeedResult(
        org=tenant.org, sandbox=tenant.sandbox, spec=spec.as_dict(), profile_datasets=profile_ds,
        event_dataset=event_ds, export_dataset=export_ds, batches=batch_ids,
        records=sum(c.records for c in chunks), records_written=stats.records_written,
        records_failed=stats.records_failed,
        failed_batches=[e["batchId"] for e in errors if e["status"] != "success"], seconds=round(seconds, 3),
        ingest_wall_records_per_s=round(records * 1000 / wall_ms, 1),
        ingest_busy_records_per_s=round(records * 1000 / max(stats.busy_ms, 1), 1),
        expected=expected, errors=errors,
    )


def _start_workers(ctx: AppContext, count: int) -> list:
    from upstack.jobs.lanes import USER
    from upstack.worker.ingest import IngestHandler
    from upstack.worker.loop import Worker

    # Ingest jobs only: an embedded seeding worker must never pick up a server's export jobs.
    pool = [Worker(ctx, {"ingest": IngestHandler()}, name=f"seed-{i}-{threading.get_native_id()}", lanes=(USER,))
            for i in range(count)]
    for w in pool:
        w.start()
    return pool


def _wait(ctx: AppContext, batch_ids: list[str], display: _Display, started: float,
          timeout_s: float | None) -> BatchStats:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        stats = batch_stats(ctx, batch_ids)
        display.update(stats, len(batch_ids), started)
        if stats.done == stats.total:
            return stats
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{stats.total - stats.done} of {stats.total} batches still not ingested after "
                               f"{timeout_s:.0f} s (are the server's workers running on this database?)")
        time.sleep(0.25)
