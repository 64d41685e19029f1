"""Profile export jobs (CONTRACT §7): check what a typed request (schemas/export_jobs.py) cannot know, create
the job with its batch, cancel, and every state change of a job and its batches (NEW -> PROCESSING ->
SUCCEEDED | FAILED, through jobs.states)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from upstack.jobs import queue
from upstack.jobs.states import BATCH, EXPORT, transition
from upstack.profiles import ExportQuery, MergePolicySpec, SegmentFilter
from upstack.schemas.export_jobs import (
    DEFAULT_SEGMENT_STATUSES,
    JOB_STATUSES,
    CreateExportJob,
    split_fields,
    time_ms,
)
from upstack.services import merge_policies
from upstack.services.errors import Invalid, NotFound
from upstack.storage import catalog_repo, metrics_repo
from upstack.storage import ups_repo as repo
from upstack.storage.models import Batch, Dataset, DatasetFile, ExportJob
from upstack.tenant import Tenant

STATUSES = JOB_STATUSES
FINISHED = ("SUCCEEDED", "FAILED")
CANCELLED = {"code": "EXPORT-CANCELLED", "msg": "Export job was cancelled", "callStack": ""}


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- the request (validated by its model, schemas/export_jobs.py) ----------------------------------------

def _target_dataset(s: Session, t: Tenant, ds_id: str) -> Dataset:
    ds = catalog_repo.get_dataset(s, t, ds_id)
    if ds is None:
        raise Invalid(f"Destination dataset '{ds_id}' does not exist in this sandbox.")
    if ds.kind != "export":
        raise Invalid(f"Destination dataset '{ds_id}' is not based on the profile union schema "
                      "(https://ns.adobe.com/xdm/context/profile__union); only such datasets take exports.")
    return ds


def parse_request(s: Session, t: Tenant, body: CreateExportJob) -> tuple[dict, Dataset]:
    """What the model cannot know (the dataset, the merge policy); the normalised request is what the job
    stores, echoes and runs: the members as sent (defaults not added), unknown members left out."""
    ds = _target_dataset(s, t, body.destination.datasetId)
    req: dict[str, Any] = {}
    if body.fields is not None:
        req["fields"] = body.fields
    ref = body.mergePolicy
    pid, pversion, _ = merge_policies.resolve(s, t, ref.id if ref else None, ref.version if ref else None)
    req["mergePolicy"] = {"id": pid, "version": pversion}
    for key in ("filter", "additionalFields"):
        value = getattr(body, key)
        if value is not None:
            req[key] = value.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    req["destination"] = {"datasetId": ds.id, "segmentPerBatch": body.destination.segmentPerBatch}
    req["schema"] = {"name": merge_policies.PROFILE_SCHEMA}
    return req, ds


# ---- what the engine runs ------------------------------------------------------------------------------

def segment_filters(req: dict) -> tuple[SegmentFilter, ...]:
    return tuple(SegmentFilter(seg["segmentId"], seg.get("segmentNs", "ups"),
                               tuple(seg.get("status", DEFAULT_SEGMENT_STATUSES)))
                 for seg in (req.get("filter") or {}).get("segments", []))


def export_query(req: dict) -> ExportQuery:
    f = req.get("filter") or {}
    sqt = f.get("segmentQualificationTime") or {}
    ev = (req.get("additionalFields") or {}).get("eventList")
    evf = (ev or {}).get("filter") or {}

    def ms(obj: dict, key: str) -> int | None:
        return time_ms(obj[key]) if obj.get(key) is not None else None

    return ExportQuery(
        fields=split_fields(req["fields"]) if "fields" in req else None,
        include_events=ev is not None,
        event_fields=split_fields(ev["fields"]) if ev and ev.get("fields") is not None else None,
        event_from_ingest_ms=ms(evf, "fromIngestTimestamp"),
        event_to_ingest_ms=ms(evf, "toIngestTimestamp"),
        segments=segment_filters(req),
        segment_qualification_start_ms=ms(sqt, "startTime"),
        segment_qualification_end_ms=ms(sqt, "endTime"),
        from_ingest_ms=ms(f, "fromIngestTimestamp"),
        empty_profiles=bool(f.get("emptyProfiles", False)),
    )


def policy_spec(version_body: dict) -> MergePolicySpec:
    am = version_body["attributeMerge"]
    return MergePolicySpec(identity_graph=version_body["identityGraph"]["type"], attribute_merge=am["type"],
                           order=tuple(am.get("order") or ()))


# ---- create, read, list, cancel ------------------------------------------------------------------------

def _new_batch(t: Tenant, dataset_id: str, job_id: int, at: int) -> Batch:
    return Batch(id=uuid.uuid4().hex, org=t.org, sandbox=t.sandbox, dataset_id=dataset_id, origin="export",
                 status="loading", input_format={"format": "parquet"}, created_ms=at, updated_ms=at,
                 records_read=0, records_written=0, records_failed=0, errors=[], export_job_id=job_id)


def create_job(s: Session, t: Tenant, body: CreateExportJob, request_id: str, *, max_attempts: int = 3) -> ExportJob:
    """The job (NEW), its Catalog batch(es) (loading) and the queued work, in the caller's one transaction."""
    req, ds = parse_request(s, t, body)
    at = now_ms()
    # Taken after validation: the tenant's counter row stays locked until commit, so keep that stretch short.
    job_id = repo.next_export_job_id(s, t)
    job = ExportJob(org=t.org, sandbox=t.sandbox, id=job_id, status="NEW", request=req, request_id=request_id[:64],
                    dataset_id=ds.id, batch_id="", merge_policy_id=req["mergePolicy"]["id"],
                    merge_policy_version=req["mergePolicy"]["version"], creation_ms=at, update_ms=at,
                    cancel_requested=False, metrics={"totalTime": {"startTimeInMs": at}}, errors=[],
                    compute_gateway={}, destination_batches=None)
    s.add(job)
    s.flush()
    if req["destination"]["segmentPerBatch"]:
        entries = []
        for seg in segment_filters(req):
            b = _new_batch(t, ds.id, job.id, at)
            s.add(b)
            entries.append({"segmentId": seg.segment_id, "segmentNs": seg.segment_ns, "status": list(seg.statuses),
                            "batchId": b.id})
        job.destination_batches = entries
    else:
        b = _new_batch(t, ds.id, job.id, at)
        s.add(b)
        job.batch_id = b.id
    s.flush()
    _last_batch(s, job, [b["batchId"] for b in job.destination_batches or []] or [job.batch_id], "loading", new=True)
    queue.enqueue(s, "export", str(job.id), t.org, t.sandbox, max_attempts=max_attempts)
    s.flush()
    return job


def get_job(s: Session, t: Tenant, job_id: str | int) -> ExportJob:
    text = str(job_id).strip()
    # isascii: str.isdigit() is also true of '²' and other digits int() refuses.
    job = repo.get_export_job(s, t, int(text)) if text.isascii() and text.isdigit() and len(text) < 19 else None
    if job is None:
        raise NotFound(f"Export job '{job_id}' not found.")
    return job


def parse_statuses(values: Sequence[str]) -> tuple[str, ...]:
    wanted = tuple(v.strip().upper() for raw in values for v in raw.split(",") if v.strip())
    bad = [v for v in wanted if v not in STATUSES]
    if bad:
        raise Invalid(f"'status' must be one of {', '.join(STATUSES)}; got {', '.join(bad)}.")
    return wanted


def list_jobs(s: Session, t: Tenant, *, sort_field: str, descending: bool, after: tuple[int, int] | None,
              skip: int, limit: int, statuses: Sequence[str]) -> list[tuple[int, int, dict[str, Any]]]:
    """(sort value, id, view) rows of one keyset page; sort_field is createdTime or updateTime."""
    jobs = repo.page_export_jobs(s, t, sort_field=sort_field, descending=descending, after=after, skip=skip,
                                 limit=limit, statuses=statuses)
    key = "creation_ms" if sort_field == "createdTime" else "update_ms"
    return [(getattr(j, key), j.id, job_view(j)) for j in jobs]


def cancel_job(s: Session, t: Tenant, job_id: str) -> None:
    """Mark for cancelling. A NEW job fails at once; a PROCESSING one at its worker's next checkpoint.
    A finished job is left as it is (AEP answers such a cancel with success and changes nothing)."""
    job = get_job(s, t, job_id)
    if job.status in FINISHED:
        return
    repo.request_cancel(s, t, job.id, now_ms())
    if job.status == "NEW":
        fail_job(s, t, job.id, [CANCELLED], from_states=("NEW",))


# ---- state changes (the worker's and the API's) --------------------------------------------------------

def _timing(start: int, end: int) -> dict[str, int]:
    return {"startTimeInMs": start, "endTimeInMs": end, "totalTimeInMs": max(0, end - start)}


def _last_batch(s: Session, job: ExportJob, batch_ids: Sequence[str], status: str, *, new: bool = False) -> None:
    """The target dataset's lastBatchId/lastBatchStatus follow the job's (last) batch."""
    if batch_ids:
        catalog_repo.set_dataset_last_batch(s, Tenant(job.org, job.sandbox), job.dataset_id, batch_ids[-1], status,
                                            new_batch=new)


def start_job(s: Session, t: Tenant, job_id: int) -> ExportJob | None:
    """Move a job to PROCESSING (a re-claimed PROCESSING job restarts) and its batches to processing.
    None when there is nothing to run: finished, gone, or cancelled (then failed here)."""
    job = repo.get_export_job(s, t, job_id, fresh=True)
    if job is None or job.status in FINISHED:
        return None
    if job.cancel_requested:
        fail_job(s, t, job.id, [CANCELLED])
        return None
    at = now_ms()
    if job.status == "NEW":
        if not transition(s, ExportJob, EXPORT, job.id, "PROCESSING", from_states=("NEW",), where=repo.in_tenant(t),
                          update_ms=at):
            return None
    batches = repo.export_batches(s, t, job.id)
    for b in batches:
        transition(s, Batch, BATCH, b.id, "processing", from_states=("loading", "processing"), updated_ms=at,
                   started_ms=at)
    _last_batch(s, job, [b.id for b in batches], "processing")
    s.flush()
    return repo.get_export_job(s, t, job_id, fresh=True)


@dataclass(frozen=True)
class BatchOutput:
    """One published batch of an export: its Data Access file id and what it holds."""

    batch_id: str
    file_id: str
    records: int
    size_bytes: int
    records_read: int


def finish_job(s: Session, t: Tenant, job_id: int, outputs: Sequence[BatchOutput], *, metrics: dict,
               compute_gateway: dict) -> bool:
    """Everything a success makes visible, at once: file rows, batches `success`, job SUCCEEDED. False
    (and nothing changed) when a cancel arrived first, so the caller can withdraw the published files."""
    job = repo.get_export_job(s, t, job_id, fresh=True)
    at = now_ms()
    full = dict(job.metrics, **metrics)
    full["totalTime"] = _timing(job.creation_ms, at)
    if not transition(s, ExportJob, EXPORT, job_id, "SUCCEEDED", from_states=("PROCESSING",),
                      where=(*repo.in_tenant(t), ExportJob.cancel_requested.is_(False)), update_ms=at, metrics=full,
                      compute_gateway=compute_gateway, errors=[]):
        return False
    for out in outputs:
        s.merge(DatasetFile(id=out.file_id, org=job.org, sandbox=job.sandbox, batch_id=out.batch_id,
                            dataset_id=job.dataset_id, created_ms=at, records=out.records, size_bytes=out.size_bytes))
        transition(s, Batch, BATCH, out.batch_id, "success", from_states=("processing",), updated_ms=at,
                   completed_ms=at, records_read=out.records_read, records_written=out.records, records_failed=0)
    _last_batch(s, job, [out.batch_id for out in outputs], "success")
    # Last: the totals row stays locked only until this commit (PostgreSQL).
    metrics_repo.add(s, metrics_repo.PROFILES_EXPORTED, "export", value=int(metrics.get("totalExportedProfileCounter", 0)))
    s.flush()
    return True


def fail_job(s: Session, t: Tenant, job_id: int, errors: list[dict], *, from_states: tuple[str, ...] | None = None,
             metrics: dict | None = None) -> bool:
    """FAILED with `errors` (batches failed too); False when the job had already finished."""
    job = repo.get_export_job(s, t, job_id, fresh=True)
    if job is None:
        return False
    at = now_ms()
    metrics = dict(job.metrics, **(metrics or {}))
    metrics["totalTime"] = _timing(job.creation_ms, at)
    if not transition(s, ExportJob, EXPORT, job_id, "FAILED", from_states=from_states, where=repo.in_tenant(t),
                      update_ms=at, errors=errors, metrics=metrics):
        return False
    batch_errors = [{"code": e["code"], "description": e["msg"], "rows": []} for e in errors]
    batches = repo.export_batches(s, t, job_id)
    for b in batches:
        transition(s, Batch, BATCH, b.id, "failed", updated_ms=at, completed_ms=at, errors=batch_errors)
    _last_batch(s, job, [b.id for b in batches], "failed")
    s.flush()
    return True


def is_cancel_requested(s: Session, t: Tenant, job_id: int) -> bool:
    return repo.is_cancel_requested(s, t, job_id)


def batch_ids(s: Session, t: Tenant, job_id: int) -> list[tuple[str, str]]:
    """(dataset id, batch id) of every batch the job writes."""
    return [(b.dataset_id, b.id) for b in repo.export_batches(s, t, job_id)]


# ---- the AEP view --------------------------------------------------------------------------------------

def job_view(job: ExportJob) -> dict[str, Any]:
    req = job.request
    failed = job.status == "FAILED"
    dest: dict[str, Any] = {"datasetId": job.dataset_id, "segmentPerBatch": req["destination"]["segmentPerBatch"]}
    if dest["segmentPerBatch"]:
        dest["batches"] = [dict(b, batchId="" if failed else b["batchId"]) for b in job.destination_batches or []]
    else:
        dest["batchId"] = "" if failed else job.batch_id
    view: dict[str, Any] = {"profileInstanceId": "ups", "jobType": "BATCH", "id": job.id}
    if job.errors:
        view["errors"] = job.errors
    for key in ("fields", "filter", "additionalFields"):
        if key in req:
            view[key] = req[key]
    view.update({
        "schema": req["schema"],
        "mergePolicy": {"id": job.merge_policy_id, "version": job.merge_policy_version},
        "status": job.status,
        "requestId": job.request_id,
        "computeGatewayJobId": job.compute_gateway or {},
        "metrics": job.metrics,
        "destination": dest,
        "updateTime": job.update_ms,
        "imsOrgId": job.org,
        "creationTime": job.creation_ms,
    })
    return view
