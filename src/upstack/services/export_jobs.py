"""Profile export jobs (CONTRACT §7): validate a request, create the job with its batch, cancel, and every
state change of a job and its batches (NEW -> PROCESSING -> SUCCEEDED | FAILED, through jobs.states)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from upstack.jobs import queue
from upstack.jobs.states import BATCH, EXPORT, transition
from upstack.profiles import ExportQuery, MergePolicySpec, SegmentFilter
from upstack.services import merge_policies
from upstack.services.errors import Invalid, NotFound
from upstack.storage import catalog_repo, metrics_repo
from upstack.storage import ups_repo as repo
from upstack.storage.models import Batch, Dataset, DatasetFile, ExportJob
from upstack.tenant import Tenant

STATUSES = ("NEW", "PROCESSING", "SUCCEEDED", "FAILED")
FINISHED = ("SUCCEEDED", "FAILED")
SEGMENT_STATUSES = ("realized", "existing", "exited")
DEFAULT_SEGMENT_STATUSES = ("realized", "existing")
CANCELLED = {"code": "EXPORT-CANCELLED", "msg": "Export job was cancelled", "callStack": ""}
# An XDM field name (tenant fields start with "_", segment ids carry "-", identity namespaces may carry "@").
_FIELD = re.compile(r"[A-Za-z0-9_@$:\-]+(\.[A-Za-z0-9_@$:\-]+)*")
FILTER_KEYS = {"segments", "segmentQualificationTime", "fromIngestTimestamp", "emptyProfiles"}
EVENT_FILTER_KEYS = {"fromIngestTimestamp", "toIngestTimestamp"}


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- request validation --------------------------------------------------------------------------------

def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"'{what}' must be an object.")
    return value


def _only(obj: dict, allowed: set[str], what: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise Invalid(f"'{what}' has unknown member(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.")


def parse_fields(value: Any, what: str) -> tuple[str, ...]:
    """`a.b,c` -> ("a.b", "c"); empty segments and characters outside XDM names are 400."""
    if not isinstance(value, str):
        raise Invalid(f"'{what}' must be a comma-separated string of dot paths.")
    parts = tuple(p.strip() for p in value.split(","))
    for p in parts:
        if not _FIELD.fullmatch(p):
            raise Invalid(f"'{what}' has a malformed field path {p!r}: use dot paths like "
                          "'person.name.firstName', separated by commas.")
    return parts


# Epoch ms of the first and last moments of years 1 and 9999: a number outside names no date the engine can
# compare with (it overflows there), so it is refused like any other malformed timestamp.
MIN_TIME_MS = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_TIME_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)


def _in_time_range(ms: int | float, value: Any, what: str) -> int:
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise Invalid(f"'{what}' must be a timestamp between the years 1 and 9999, got {repr(value)[:100]}.")
    return int(ms)


def parse_time_ms(value: Any, what: str) -> int:
    """RFC 3339 text (a space instead of 'T' and a missing offset, read as UTC, tolerated) or epoch ms."""
    if isinstance(value, bool):
        raise Invalid(f"'{what}' must be an RFC 3339 timestamp or epoch milliseconds, got {value!r}.")
    if isinstance(value, int | float):
        return _in_time_range(value, value, what)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            # More than 19 digits is past every date (and int() refuses thousands of digits outright).
            return _in_time_range(int(text) if len(text) <= 19 else MAX_TIME_MS + 1, value, what)
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            stamp = None
        if stamp is not None and len(text) >= 10:
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            return int(stamp.timestamp() * 1000)
    raise Invalid(f"'{what}' must be an RFC 3339 timestamp (e.g. 2018-10-25T13:22:04-07:00) or epoch "
                  f"milliseconds, got {value!r}.")


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"'{what}' must be true or false, got {value!r}.")
    return value


def _segments(value: Any) -> list[dict]:
    if not isinstance(value, list):
        raise Invalid("'filter.segments' must be an array of {segmentId, segmentNs, status}.")
    out = []
    for i, seg in enumerate(value):
        seg = _object(seg, f"filter.segments[{i}]")
        _only(seg, {"segmentId", "segmentNs", "status"}, f"filter.segments[{i}]")
        if not isinstance(seg.get("segmentId"), str) or not seg["segmentId"].strip():
            raise Invalid(f"'filter.segments[{i}].segmentId' is required and must be a non-empty string.")
        ns = seg.get("segmentNs", "ups")
        if not isinstance(ns, str) or not ns:
            raise Invalid(f"'filter.segments[{i}].segmentNs' must be a non-empty string.")
        status = seg.get("status", list(DEFAULT_SEGMENT_STATUSES))
        if (not isinstance(status, list) or not status
                or any(s not in SEGMENT_STATUSES for s in status)):
            raise Invalid(f"'filter.segments[{i}].status' must be a non-empty array of "
                          f"{', '.join(SEGMENT_STATUSES)}; got {status!r}.")
        out.append(seg)
    return out


def _filter(value: Any) -> dict:
    f = _object(value, "filter")
    _only(f, FILTER_KEYS, "filter")
    if "segments" in f:
        _segments(f["segments"])
    if "segmentQualificationTime" in f:
        sqt = _object(f["segmentQualificationTime"], "filter.segmentQualificationTime")
        _only(sqt, {"startTime", "endTime"}, "filter.segmentQualificationTime")
        for k in ("startTime", "endTime"):
            if k in sqt:
                parse_time_ms(sqt[k], f"filter.segmentQualificationTime.{k}")
    if "fromIngestTimestamp" in f:
        parse_time_ms(f["fromIngestTimestamp"], "filter.fromIngestTimestamp")
    if "emptyProfiles" in f:
        _bool(f["emptyProfiles"], "filter.emptyProfiles")
    return f


def _additional_fields(value: Any) -> dict:
    af = _object(value, "additionalFields")
    _only(af, {"eventList"}, "additionalFields")
    if "eventList" in af:
        ev = _object(af["eventList"], "additionalFields.eventList")
        _only(ev, {"fields", "filter"}, "additionalFields.eventList")
        if "fields" in ev:
            parse_fields(ev["fields"], "additionalFields.eventList.fields")
        if "filter" in ev:
            evf = _object(ev["filter"], "additionalFields.eventList.filter")
            _only(evf, EVENT_FILTER_KEYS, "additionalFields.eventList.filter")
            for k in sorted(EVENT_FILTER_KEYS & set(evf)):
                parse_time_ms(evf[k], f"additionalFields.eventList.filter.{k}")
    return af


def _policy_ref(value: Any) -> tuple[str, int | None]:
    ref = _object(value, "mergePolicy")
    if not isinstance(ref.get("id"), str) or not ref["id"]:
        raise Invalid("'mergePolicy.id' must be a non-empty string.")
    version = ref.get("version")
    return ref["id"], None if version is None else merge_policies.parse_version(version, "mergePolicy.version")


def _target_dataset(s: Session, t: Tenant, dest: dict) -> Dataset:
    ds_id = dest.get("datasetId", dest.get("dataSetId"))
    if not isinstance(ds_id, str) or not ds_id:
        raise Invalid("'destination.datasetId' is required.")
    ds = catalog_repo.get_dataset(s, t, ds_id)
    if ds is None:
        raise Invalid(f"Destination dataset '{ds_id}' does not exist in this sandbox.")
    if ds.kind != "export":
        raise Invalid(f"Destination dataset '{ds_id}' is not based on the profile union schema "
                      "(https://ns.adobe.com/xdm/context/profile__union); only such datasets take exports.")
    return ds


def parse_request(s: Session, t: Tenant, body: Any) -> tuple[dict, Dataset]:
    """Validate a create body; the normalised request is what the job stores, echoes and runs."""
    body = _object(body, "body")
    schema = body.get("schema")
    if not isinstance(schema, dict) or "name" not in schema:
        raise Invalid("'schema.name' is required.")
    if schema["name"] != merge_policies.PROFILE_SCHEMA:
        raise Invalid(f"'schema.name' must be '{merge_policies.PROFILE_SCHEMA}', got {schema['name']!r}.")
    if "destination" not in body:
        raise Invalid("'destination' with a 'datasetId' is required.")
    dest = _object(body["destination"], "destination")
    ds = _target_dataset(s, t, dest)
    per_segment = _bool(dest.get("segmentPerBatch", False), "destination.segmentPerBatch")
    req: dict[str, Any] = {}
    if "fields" in body and body["fields"] is not None:
        parse_fields(body["fields"], "fields")
        req["fields"] = body["fields"]
    policy_id, version = _policy_ref(body["mergePolicy"]) if body.get("mergePolicy") is not None else (None, None)
    pid, pversion, _ = merge_policies.resolve(s, t, policy_id, version)
    req["mergePolicy"] = {"id": pid, "version": pversion}
    if body.get("filter") is not None:
        req["filter"] = _filter(body["filter"])
    if body.get("additionalFields") is not None:
        req["additionalFields"] = _additional_fields(body["additionalFields"])
    if per_segment and not (req.get("filter") or {}).get("segments"):
        raise Invalid("'destination.segmentPerBatch' needs 'filter.segments': one batch is written per segment.")
    req["destination"] = {"datasetId": ds.id, "segmentPerBatch": per_segment}
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
        return parse_time_ms(obj[key], key) if key in obj else None

    return ExportQuery(
        fields=parse_fields(req["fields"], "fields") if "fields" in req else None,
        include_events=ev is not None,
        event_fields=parse_fields(ev["fields"], "fields") if ev and "fields" in ev else None,
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


def create_job(s: Session, t: Tenant, body: Any, request_id: str, *, max_attempts: int = 3) -> ExportJob:
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
