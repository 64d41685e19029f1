"""The ingest job: convert a completed batch's uploads into validated Parquet, publish it, record the outcome.

Order matters for crash safety: convert into a private staging directory, publish it in one rename
(a re-run replaces it), then one transaction records the files, the failed rows, the metrics and the
batch's final status. Until that commit the batch is ``processing`` and Data Access shows nothing of it;
a job re-claimed after a crash starts from the beginning and ends in the same place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from upstack.context import AppContext
from upstack.jobs.queue import Claimed
from upstack.jobs.states import BATCH, transition
from upstack.lake import Bounds, RefusedFile, UnreadableFile
from upstack.lake.parquet import INGEST_ROW_GROUP_ROWS, write_table
from upstack.lake.records import convert_file
from upstack.lake.rows import RowError
from upstack.services import profile_store
from upstack.services.catalog import now_ms
from upstack.storage import catalog_repo as repo
from upstack.storage import metrics_repo
from upstack.storage.models import Batch, DatasetFile
from upstack.tenant import Tenant
from upstack.worker.base import JobContext, PermanentFailure

log = logging.getLogger("upstack.worker.ingest")

# Failed rows kept per batch for /failed; recordsFailed still counts every one. Bounds memory and the table
# when a whole large file is rejected row by row.
MAX_STORED_FAILED_ROWS = 100_000
# Row ranges listed in one Catalog `errors[].rows`.
MAX_ERROR_RANGES = 100


@dataclass
class _Plan:
    tenant: Tenant
    batch_id: str
    dataset_id: str
    kind: str
    fmt: str
    multiline: bool
    ingest_ms: int
    store_kind: str | None  # profile | event: the profile store indexes the batch; None for other datasets


@dataclass
class _Outcome:
    read: int = 0
    written: int = 0
    failed: int = 0
    bytes: int = 0
    # (batch-wide record index, error): the index counts records of all files, in name order.
    errors: list[tuple[int, RowError]] = field(default_factory=list)
    codes: dict[str, list[int]] = field(default_factory=dict)
    first: dict[str, RowError] = field(default_factory=dict)

    def add(self, base: int, errors: list[RowError]) -> None:
        self.failed += len(errors)
        for e in errors:
            if len(self.errors) < MAX_STORED_FAILED_ROWS:
                self.errors.append((base + e.row, e))
            self.codes.setdefault(e.code, []).append(base + e.row)
            self.first.setdefault(e.code, e)


class IngestHandler:
    kind = "ingest"

    def run(self, jc: JobContext) -> None:
        plan = self._plan(jc.app, jc.job)
        if plan is None:
            return
        jc.wait_while_held()  # the batch is processing, until a test releases it (manual pacing)
        lake, t = jc.app.lake, plan.tenant
        uploads = [u for u in lake.list_uploads(t.org, t.sandbox, plan.batch_id) if u.dataset_id == plan.dataset_id]
        started = time.perf_counter()
        if not uploads:
            self._finish(jc.app, plan, _Outcome(), [{"code": "EMPTY-BATCH", "rows": [],
                         "description": "The batch was completed without any file; nothing was ingested."}])
            return
        out = _Outcome()
        settings = jc.app.settings
        bounds = Bounds(depth=settings.max_record_depth, fields=settings.max_record_fields)
        staging = lake.new_staging(plan.batch_id, jc.owner)
        published = False
        try:
            for number, upload in enumerate(uploads):
                jc.checkpoint()
                try:
                    converted = convert_file(upload.path, plan.fmt, plan.multiline, plan.kind,
                                             batch_id=plan.batch_id, ingest_time_ms=plan.ingest_ms,
                                             row_offset=out.written, file_name=upload.relpath, bounds=bounds)
                except UnreadableFile as exc:
                    raise PermanentFailure("UNREADABLE-FILE", f"File '{upload.relpath}' cannot be read as "
                                           f"{plan.fmt}: {exc.reason}. Nothing of this batch was ingested.") from None
                except RefusedFile as exc:
                    raise PermanentFailure(exc.code, f"File '{upload.relpath}' is refused: {exc.reason}. Nothing of "
                                           "this batch was ingested.") from None
                out.add(out.read, converted.failed)
                out.read += converted.read
                if converted.table is not None and converted.table.num_rows:
                    paths = write_table(converted.table, staging, prefix=f"part-{number:05d}",
                                        max_rows_per_file=settings.export_rows_per_file,
                                        row_group_rows=INGEST_ROW_GROUP_ROWS)
                    out.written += converted.table.num_rows
                    out.bytes += sum(p.stat().st_size for p in paths)
                del converted
            jc.checkpoint()
            if out.written:
                lake.publish(staging, t.org, t.sandbox, plan.dataset_id, plan.batch_id, file_id=_file_id(plan))
                published = True
        finally:
            if not published:
                lake.discard_staging(staging)
        self._finish(jc.app, plan, out, _error_summary(out))
        elapsed = time.perf_counter() - started
        log.info("batch ingested", extra={
            "batch_id": plan.batch_id, "dataset_id": plan.dataset_id, "format": plan.fmt, "files": len(uploads),
            "records_read": out.read, "records_written": out.written, "records_failed": out.failed,
            "bytes": out.bytes, "duration_ms": round(elapsed * 1000, 3),
            "records_per_s": round(out.read / elapsed) if elapsed > 0 else 0})

    def give_up(self, app: AppContext, job: Claimed, code: str, message: str) -> None:
        t = Tenant(job.org, job.sandbox)
        t_ms = now_ms()
        with app.db.session() as s:
            b = repo.get_batch(s, t, job.subject_id)
            if b is None:
                return
            moved = transition(s, Batch, BATCH, b.id, "failed", from_states=("processing",), updated_ms=t_ms,
                               completed_ms=t_ms, records_written=0,
                               errors=[{"code": code, "description": message, "rows": []}])
            if not moved:
                return
            repo.delete_batch_outputs(s, b.id)
            repo.set_dataset_last_batch(s, t, b.dataset_id, b.id, "failed")
            dataset_id = b.dataset_id
        # A crash may have left this batch's files published: a failed batch keeps none.
        app.lake.remove_batch(t.org, t.sandbox, dataset_id, job.subject_id)
        log.warning("batch failed", extra={"batch_id": job.subject_id, "dataset_id": dataset_id, "code": code,
                                           "detail": message})

    # -- steps -----------------------------------------------------------------------------------------

    def _plan(self, app: AppContext, job: Claimed) -> _Plan | None:
        t = Tenant(job.org, job.sandbox)
        with app.db.session() as s:
            b = repo.get_batch(s, t, job.subject_id)
            if b is None or b.status != "processing" or b.origin != "ingestion":
                # Aborted, reverted, deleted with its dataset, or finished by an earlier run: nothing to do.
                log.info("batch not processing; its ingest job does nothing",
                         extra={"batch_id": job.subject_id, "status": b.status if b else "gone"})
                return None
            ds = repo.get_dataset(s, t, b.dataset_id)
            if ds is None:
                return None
            fmt = (b.input_format or {}).get("format", "json")
            multiline = bool((b.input_format or {}).get("isMultiLineJson", False))
            return _Plan(t, b.id, ds.id, "event" if ds.kind == "event" else "profile", fmt, multiline,
                         b.started_ms or b.created_ms, ds.kind if ds.kind in profile_store.KINDS else None)

    def _finish(self, app: AppContext, plan: _Plan, out: _Outcome, errors: list[dict[str, Any]]) -> None:
        """One transaction: outputs of any earlier run replaced, files and failed rows recorded, batch moved."""
        t = plan.tenant
        status = "success" if out.written else "failed"
        t_ms = now_ms()
        with app.db.session() as s:
            moved = transition(s, Batch, BATCH, plan.batch_id, status, from_states=("processing",),
                               updated_ms=t_ms, completed_ms=t_ms, records_read=out.read,
                               records_written=out.written, records_failed=out.failed, errors=errors)
            if moved:
                repo.delete_batch_outputs(s, plan.batch_id)
                if out.written:
                    s.add(DatasetFile(id=_file_id(plan), org=t.org, sandbox=t.sandbox, batch_id=plan.batch_id,
                                      dataset_id=plan.dataset_id, created_ms=t_ms, records=out.written,
                                      size_bytes=out.bytes))
                repo.insert_failed_rows(s, plan.batch_id, [
                    {"file": e.file, "row": e.row, "code": e.code, "message": e.message, "record": e.record}
                    for _, e in out.errors])
                repo.set_dataset_last_batch(s, t, plan.dataset_id, plan.batch_id, status)
                if status == "success" and plan.store_kind:
                    # The profile store indexes the batch in the background lane; until then lookups scan it
                    # (read your writes from this commit on), and the ingest's own time stays the ingest's.
                    profile_store.request_sync(s, t)
                if out.written:  # last: the totals row stays locked only until this commit (PostgreSQL)
                    metrics_repo.add(s, metrics_repo.RECORDS_INGESTED, "ingest", value=out.written)
            gone = not moved and repo.get_batch(s, t, plan.batch_id) is None
        if gone and out.written:
            # The batch (or its dataset) was deleted while we worked: what we just published belongs to no one.
            app.lake.remove_batch(t.org, t.sandbox, plan.dataset_id, plan.batch_id)
        if moved:
            app.lake.remove_uploads(t.org, t.sandbox, plan.batch_id)


def _file_id(plan: _Plan) -> str:
    return f"{plan.batch_id}-1"


def _ranges(rows: list[int]) -> list[str]:
    """[3, 4, 5, 9] -> ["3-5", "9"], at most MAX_ERROR_RANGES of them."""
    out: list[str] = []
    start = prev = None
    for r in sorted(rows):
        if prev is not None and r == prev + 1:
            prev = r
            continue
        if start is not None:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            if len(out) >= MAX_ERROR_RANGES:
                return out
        start = prev = r
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else str(start))
    return out


def _error_summary(out: _Outcome) -> list[dict[str, Any]]:
    """Catalog `errors`: one entry per row error code (rows are batch-wide record indexes), plus why the batch
    failed when no record was accepted."""
    errors = []
    for code, rows in out.codes.items():
        e = out.first[code]
        errors.append({"code": code, "rows": _ranges(rows),
                       "description": f"{len(rows)} record(s) rejected; first: file '{e.file}' row {e.row}: "
                                      f"{e.message}"})
    if not out.written:
        errors.insert(0, {"code": "NO-VALID-RECORDS", "rows": [],
                          "description": f"None of the {out.read} record(s) of this batch was accepted."})
    return errors
