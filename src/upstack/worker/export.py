"""The export handler: merge the tenant's profiles, write Parquet, publish, and record the job's outcome."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from sqlalchemy.exc import OperationalError

from upstack.context import AppContext
from upstack.jobs.queue import Claimed
from upstack.lake.parquet import write_table
from upstack.profiles import ExportCancelled, MergeResultPart, iter_merge_profiles, split_by_segment
from upstack.services import export_jobs, merge_policies, profile_deletions, profile_inputs, profile_store
from upstack.services.export_jobs import CANCELLED, BatchOutput
from upstack.tenant import Tenant
from upstack.worker.base import JobContext, JobLost, PermanentFailure

log = logging.getLogger("upstack.worker.export")

# Worth retrying: the database or the file system hiccupped (or a dataset's files were deleted while we
# read them: the next run lists them again). Anything else is deterministic and fails the job at once.
TRANSIENT = (OperationalError, OSError)


def now_ms() -> int:
    return int(time.time() * 1000)


def timing(start: int, end: int) -> dict[str, int]:
    return {"startTimeInMs": start, "endTimeInMs": end, "totalTimeInMs": max(0, end - start)}


def call_stack(exc: BaseException, frames: int = 4) -> str:
    """The exception type and its last few frames: enough to find the place, not a full dump."""
    tail = traceback.extract_tb(exc.__traceback__)[-frames:]
    where = " <- ".join(f"{'/'.join(f.filename.split('/')[-2:])}:{f.lineno} {f.name}" for f in reversed(tail))
    return f"{type(exc).__module__}.{type(exc).__qualname__}" + (f" at {where}" if where else "")


class CancelCheck:
    """The engine's should_cancel: renews nothing but notices a lost lease at once (jc.checkpoint) and reads
    `cancel_requested` at most every `interval` seconds (the first call always reads)."""

    def __init__(self, jc: JobContext, tenant: Tenant, job_id: int, interval: float = 0.5):
        self.jc, self.tenant, self.job_id, self.interval = jc, tenant, job_id, interval
        self._last = float("-inf")

    def __call__(self) -> bool:
        self.jc.checkpoint()
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        with self.jc.app.db.session() as s:
            return export_jobs.is_cancel_requested(s, self.tenant, self.job_id)

    def check(self) -> None:
        if self():
            raise ExportCancelled("export cancelled")


@dataclass
class Plan:
    """What one run needs, read in one short transaction so the long merge holds no database locks."""

    job_id: int
    tenant: Tenant
    dataset_id: str
    targets: list[tuple[str, object]]  # (batch id, SegmentFilter or None for the whole result)
    request: dict
    policy_body: dict


class _Output:
    """The Parquet files of one run, per target batch: written part by part into a staging directory each,
    published (one rename per batch) only once every part is in."""

    def __init__(self, targets: list[tuple[str, object]], owner: str):
        self.owner = owner  # the job run's tag: the sweep leaves a live run's staging alone
        self.staging: dict[str, Path] = {}
        self.files: dict[str, int] = {b: 0 for b, _ in targets}
        self.rows_of: dict[str, int] = {b: 0 for b, _ in targets}
        self.write_start = 0
        self.rows = 0
        self.by_namespace: dict[str, int] = {}
        self.excluded_components = self.fragments_read = self.events_read = 0

    def write(self, app: AppContext, batch_id: str, table: pa.Table, part: MergeResultPart) -> None:
        self.write_start = self.write_start or now_ms()
        last = part.part == part.parts - 1
        # Empty slices are skipped, except that a batch always gets one file (a reader finds the schema).
        if table.num_rows == 0 and (self.files[batch_id] or not last):
            return
        if batch_id not in self.staging:
            self.staging[batch_id] = app.lake.new_staging(batch_id, self.owner)
        prefix = "part" if part.parts == 1 else f"part-{part.part:05d}"
        paths = write_table(table, self.staging[batch_id],
                            max_rows_per_file=app.settings.export_rows_per_file, prefix=prefix)
        self.files[batch_id] += len(paths)
        self.rows_of[batch_id] += table.num_rows

    def count(self, part: MergeResultPart) -> None:
        self.rows += part.profiles.num_rows
        for ns, n in part.by_namespace.items():
            self.by_namespace[ns] = self.by_namespace.get(ns, 0) + n
        # These are the whole export's so far: the last part's are the totals.
        self.excluded_components = part.excluded_components
        self.fragments_read, self.events_read = part.fragments_read, part.events_read

    def publish(self, app: AppContext, plan: Plan, batch_id: str) -> BatchOutput:
        """Publish as `<batch>-1`; a re-run after a crash replaces the directory whole."""
        file_id = f"{batch_id}-1"
        files = app.lake.publish(self.staging.pop(batch_id), plan.tenant.org, plan.tenant.sandbox, plan.dataset_id,
                                 batch_id, file_id=file_id)
        return BatchOutput(batch_id, file_id, self.rows_of[batch_id], sum(f.size for f in files),
                           self.fragments_read + self.events_read)

    def discard(self, app: AppContext) -> None:
        for path in self.staging.values():
            app.lake.discard_staging(path)
        self.staging.clear()


class ExportHandler:
    kind = "export"
    cancel_poll_seconds = 0.5

    def run(self, jc: JobContext) -> None:
        app = jc.app
        # An export job id means something only within its tenant, which the queue row carries.
        tenant, job_id = Tenant(jc.job.org, jc.job.sandbox), int(jc.job.subject_id)
        started = time.perf_counter()
        plan, inputs = self._prepare(app, tenant, job_id)
        if plan is None:
            return
        checker = CancelCheck(jc, tenant, job_id, self.cancel_poll_seconds)
        phase = "reading and merging profiles"
        extra: dict = {}
        out = _Output(plan.targets, jc.owner)
        published: list[BatchOutput] = []
        try:
            jc.wait_while_held(checker.check)  # PROCESSING, until a test releases it (manual pacing)
            query = export_jobs.export_query(plan.request)
            spec = export_jobs.policy_spec(plan.policy_body)
            with app.db.read_session() as s:
                deletions = profile_deletions.load(s, tenant)  # usually none: then parts pass untouched
            merge_start = now_ms()
            # Parts keep memory bounded on big lakes: each is written as soon as it is merged. closing()
            # lets the engine drop its temp files at once when we stop early (cancel, error).
            parts = iter_merge_profiles(inputs, spec, query, should_cancel=checker,
                                        temp_dir=jc.temp_dir,
                                        memory_limit=app.settings.engine_memory_limit,
                                        engine=app.settings.engine, spark_master=app.settings.spark_master,
                                        components=(lambda: self._components(app, tenant, inputs))
                                        if app.settings.export_by_component else None)
            with closing(parts):
                for part in parts:
                    part = profile_deletions.drop_deleted(part, deletions, spec.identity_graph)  # noqa: PLW2901
                    extra["profileExportTime"] = timing(merge_start, now_ms())
                    phase = "writing Parquet files"
                    for batch_id, seg in plan.targets:
                        checker.check()
                        table = part.profiles if seg is None else split_by_segment(part, seg)
                        out.write(app, batch_id, table, part)
                    out.count(part)
                    phase = "reading and merging profiles"
            log.info("export profiles merged", extra={
                "export_job_id": job_id, "profiles": out.rows, "fragments": out.fragments_read,
                "events": out.events_read, "datasets": len(inputs),
                "duration_ms": extra["profileExportTime"]["totalTimeInMs"]})
            phase = "publishing Parquet files"
            for batch_id, _ in plan.targets:
                checker.check()
                published.append(out.publish(app, plan, batch_id))
                log.info("export batch published", extra={
                    "export_job_id": job_id, "dataset_id": plan.dataset_id, "batch_id": batch_id,
                    "records": published[-1].records, "bytes": published[-1].size_bytes})
            write_end = now_ms()
            checker.check()
            metrics = dict(extra, aCPDatasetWriteTime=timing(out.write_start, write_end),
                           totalExportedProfileCounter=out.rows,
                           exportedProfileByNamespaceCounter=dict(sorted(out.by_namespace.items())))
            if out.excluded_components:
                metrics["excludedComponentCounter"] = out.excluded_components
            gateway = {"exportJob": str(uuid.uuid4()), "pushJob": str(uuid.uuid4())}
            phase = "recording the result"
            with app.db.session() as s:
                done = export_jobs.finish_job(s, tenant, job_id, published, metrics=metrics, compute_gateway=gateway)
            if not done:  # a cancel (or a give-up elsewhere) won the race with our last transaction
                raise ExportCancelled("export cancelled after publishing")
        except ExportCancelled:
            out.discard(app)
            self._withdraw(app, plan, published)
            with app.db.session() as s:
                if not export_jobs.is_cancel_requested(s, tenant, job_id):
                    raise JobLost(f"export job {job_id} finished elsewhere") from None
                export_jobs.fail_job(s, tenant, job_id, [CANCELLED], metrics=extra)
            log.info("export job cancelled", extra={"export_job_id": job_id, "phase": phase})
            raise PermanentFailure(CANCELLED["code"], CANCELLED["msg"]) from None
        except TRANSIENT as exc:
            out.discard(app)
            self._withdraw(app, plan, published)
            if not jc.is_last_attempt:
                raise  # the loop retries with backoff
            self._fail(app, tenant, job_id, exc, phase, extra)
        except BaseException as exc:
            out.discard(app)
            if not isinstance(exc, Exception) or isinstance(exc, JobLost | PermanentFailure):
                raise
            # deterministic: bad data, an engine error
            self._withdraw(app, plan, published)
            self._fail(app, tenant, job_id, exc, phase, extra)
        log.info("export job succeeded", extra={
            "export_job_id": job_id, "dataset_id": plan.dataset_id, "batch_ids": [p.batch_id for p in published],
            "profiles": out.rows, "bytes": sum(p.size_bytes for p in published),
            "write_ms": write_end - out.write_start, "duration_ms": round((time.perf_counter() - started) * 1000, 3)})

    def give_up(self, app: AppContext, job: Claimed, code: str, message: str) -> None:
        tenant, job_id = Tenant(job.org, job.sandbox), int(job.subject_id)
        with app.db.session() as s:
            export_jobs.fail_job(s, tenant, job_id, [{"code": code, "msg": message, "callStack": ""}])
            batches = export_jobs.batch_ids(s, tenant, job_id)
        # A worker that died after publishing leaves files with no Catalog row: withdraw them.
        for dataset_id, batch_id in batches:
            app.lake.remove_batch(job.org, job.sandbox, dataset_id, batch_id)

    # -- steps -----------------------------------------------------------------------------------------

    def _prepare(self, app: AppContext, tenant: Tenant, job_id: int):
        t0 = time.perf_counter()
        with app.db.session() as s:
            job = export_jobs.start_job(s, tenant, job_id)
            if job is None:
                log.info("export job has nothing to run (finished, cancelled or gone)",
                         extra={"export_job_id": job_id})
                return None, []
            body = merge_policies.version_body(s, tenant, job.merge_policy_id, job.merge_policy_version)
            if body is None:
                export_jobs.fail_job(s, tenant, job_id, [{
                    "code": "EXPORT-MERGE-POLICY-MISSING", "callStack": "",
                    "msg": f"Merge policy {job.merge_policy_id} version {job.merge_policy_version} no longer exists"}])
                raise PermanentFailure("EXPORT-MERGE-POLICY-MISSING", "merge policy version is gone")
            if job.request["destination"]["segmentPerBatch"]:
                segs = export_jobs.segment_filters(job.request)
                targets = [(entry["batchId"], seg) for entry, seg in zip(job.destination_batches or [], segs,
                                                                          strict=True)]
            else:
                targets = [(job.batch_id, None)]
            inputs = profile_inputs.dataset_inputs(s, app.lake, tenant)
            plan = Plan(job_id, tenant, job.dataset_id, targets, job.request, body)
        log.info("export job processing", extra={
            "export_job_id": job_id, "dataset_id": job.dataset_id, "batch_ids": [b for b, _ in targets],
            "datasets": len(inputs), "files": sum(len(d.files) for d in inputs),
            "merge_policy_id": job.merge_policy_id, "merge_policy_version": job.merge_policy_version,
            "duration_ms": round((time.perf_counter() - t0) * 1000, 3)})
        return plan, inputs

    @staticmethod
    def _components(app: AppContext, tenant: Tenant, inputs: list) -> dict | None:
        """The profile store's component of every input record, asked by the engine only for an export it
        splits: the parts are then groups of components (profiles/grouped.py), not a whole-lake stitch."""
        with app.db.read_session() as s:
            return profile_store.export_components(s, app.lake, tenant, inputs)

    def _withdraw(self, app: AppContext, plan: Plan, published: list[BatchOutput]) -> None:
        for out in published:
            app.lake.remove_batch(plan.tenant.org, plan.tenant.sandbox, plan.dataset_id, out.batch_id)

    def _fail(self, app: AppContext, tenant: Tenant, job_id: int, exc: BaseException, phase: str, extra: dict) -> None:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        error = {"code": "EXPORT-FAILED", "msg": f"Export failed while {phase}: {type(exc).__name__}: {detail}",
                 "callStack": call_stack(exc)}
        log.warning("export job failed", extra={"export_job_id": job_id, "phase": phase}, exc_info=exc)
        with app.db.session() as s:
            export_jobs.fail_job(s, tenant, job_id, [error], metrics=extra)
        raise PermanentFailure(error["code"], error["msg"]) from exc
