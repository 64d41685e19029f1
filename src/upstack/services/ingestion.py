"""Batch Ingestion domain: create batches, accept their uploads, and complete, abort, fail or revert them.

Completing a batch only moves it to ``processing`` and queues an ``ingest`` job in the same transaction;
the conversion itself is `upstack.worker.ingest`. The moment of COMPLETE is the batch's ``started_ms``
(Catalog ``started`` / ``metrics.startTime``), and it is also the ingestion time every record of the
batch carries (``_acp_system_metadata.ingestTime``): AEP calls it the batch's completion time, and it
must not move when a crashed job is re-run later.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from upstack.config import Settings
from upstack.jobs import queue
from upstack.jobs.states import BATCH, transition
from upstack.lake import Lake, UnsafePath, UploadedFile, validate_upload_path
from upstack.lake import TooLarge as LakeTooLarge
from upstack.services.catalog import now_ms
from upstack.services.errors import Invalid, NotFound, TooLarge
from upstack.services.tenancy import Tenant
from upstack.storage import catalog_repo as repo
from upstack.storage.models import Batch

FORMATS = ("json", "parquet")
ACTIONS = ("COMPLETE", "ABORT", "FAIL", "REVERT")
JOB_KIND = "ingest"


def new_batch_id() -> str:
    return uuid.uuid4().hex


# ---- create ----------------------------------------------------------------------------------------

def _input_format(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("'inputFormat' is required and must be an object like {\"format\": \"json\"}.")
    fmt = value.get("format")
    if not isinstance(fmt, str) or not fmt.strip():
        raise Invalid("'inputFormat.format' is required: json or parquet.")
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise Invalid(f"Unsupported inputFormat.format '{value['format']}': this server ingests json or parquet.")
    multiline = value.get("isMultiLineJson", False)
    if isinstance(multiline, str) and multiline.lower() in ("true", "false"):
        multiline = multiline.lower() == "true"
    if not isinstance(multiline, bool):
        raise Invalid("'inputFormat.isMultiLineJson' must be true or false.")
    return {"format": fmt, "isMultiLineJson": multiline} if fmt == "json" else {"format": fmt}


def create_batch(s: Session, t: Tenant, body: Any) -> Batch:
    if not isinstance(body, dict):
        raise Invalid("Request body must be a JSON object with 'datasetId' and 'inputFormat'.")
    dataset_id = body.get("datasetId", body.get("dataSetId"))
    if not isinstance(dataset_id, str) or not dataset_id.strip():
        raise Invalid("'datasetId' is required and must be a non-empty string.")
    input_format = _input_format(body.get("inputFormat"))
    ds = repo.get_dataset(s, t, dataset_id.strip())
    if ds is None:
        raise NotFound("DataSet not found.")
    if ds.kind == "export":
        raise Invalid(f"DataSet '{ds.id}' is an export target (profile__union schema); it cannot be ingested into.")
    t_ms = now_ms()
    b = Batch(id=new_batch_id(), org=t.org, sandbox=t.sandbox, dataset_id=ds.id, origin="ingestion",
              status="loading", input_format=input_format, created_ms=t_ms, updated_ms=t_ms,
              records_read=0, records_written=0, records_failed=0, errors=[])
    s.add(b)
    repo.set_dataset_last_batch(s, t, ds.id, b.id, "loading", new_batch=True)
    s.flush()
    return b


def get_batch(s: Session, t: Tenant, batch_id: str) -> Batch:
    b = repo.get_batch(s, t, batch_id)
    if b is None:
        raise NotFound("Batch not found.")
    return b


# ---- uploads ---------------------------------------------------------------------------------------

def upload_path(file_path: str) -> str:
    """The normalised relative path of an upload, or 400: never `..`, absolute, or control characters."""
    try:
        return validate_upload_path(file_path)
    except UnsafePath as exc:
        raise Invalid(f"Invalid file path '{file_path[:200]!s}': {exc}.") from None


def check_upload(s: Session, t: Tenant, batch_id: str, dataset_id: str, file_path: str) -> tuple[Batch, str]:
    """May this file be (re)uploaded into this batch now? Returns the batch and the normalised path."""
    rel = upload_path(file_path)
    b = get_batch(s, t, batch_id)
    if b.origin != "ingestion":
        raise Invalid(f"Batch {b.id} was created by an export job; files cannot be uploaded into it.")
    if b.dataset_id != dataset_id:
        raise Invalid(f"Batch {b.id} was created for dataset {b.dataset_id}, not {dataset_id}.")
    if b.status != "loading":
        raise Invalid(f"Batch {b.id} is '{b.status}': files can be uploaded only while it is 'loading'.")
    return b, rel


def store_upload(lake: Lake, b: Batch, rel: str, data: Iterable[bytes], max_bytes: int) -> UploadedFile:
    """Write one upload whole (a re-upload of the same path replaces it); oversize ones leave nothing behind."""
    try:
        return lake.write_upload(b.org, b.sandbox, b.id, b.dataset_id, rel, data, max_bytes=max_bytes)
    except LakeTooLarge as exc:
        raise TooLarge(f"File '{rel}' is larger than the upload limit of {exc.max_bytes} bytes.") from None
    except UnsafePath as exc:
        raise Invalid(f"Invalid file path '{rel}': {exc}.") from None


def uploaded_size(lake: Lake, b: Batch, dataset_id: str, rel: str) -> int | None:
    if dataset_id != b.dataset_id:
        return None
    path = lake.upload_path(b.org, b.sandbox, b.id, b.dataset_id, rel)
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


# ---- actions ---------------------------------------------------------------------------------------

def act(s: Session, t: Tenant, lake: Lake, settings: Settings, batch_id: str, action: str | None) -> Batch | None:
    """Apply `?action=`; returns the batch as it is now (None once REVERT deleted it)."""
    name = (action or "").strip().upper()
    if name not in ACTIONS:
        shown = f"'{action}'" if action else "none"
        raise Invalid(f"Unknown batch action {shown}: use one of {', '.join(ACTIONS)}.")
    b = get_batch(s, t, batch_id)
    if b.origin != "ingestion":
        raise Invalid(f"Batch {b.id} belongs to an export job; only its job moves it.")
    if name == "COMPLETE":
        return complete(s, t, settings, b)
    if name == "REVERT":
        revert(s, t, lake, b)
        return None
    return stop_loading(s, t, lake, b, "aborted" if name == "ABORT" else "failed")


def _refused(b: Batch, verb: str) -> Invalid:
    if b.status == "processing":
        why = "it is already complete and being processed"
    elif b.status in ("success", "failed"):
        why = f"it is already complete (status '{b.status}')"
    elif b.status == "aborted":
        why = "it was aborted"
    else:
        why = f"it is '{b.status}'"
    return Invalid(f"Batch {b.id} cannot be {verb}: {why}.")


def complete(s: Session, t: Tenant, settings: Settings, b: Batch) -> Batch:
    t_ms = now_ms()
    if not transition(s, Batch, BATCH, b.id, "processing", from_states=("loading",),
                      updated_ms=t_ms, started_ms=t_ms):
        s.refresh(b)
        raise _refused(b, "completed")
    queue.enqueue(s, JOB_KIND, b.id, t.org, t.sandbox, max_attempts=settings.job_max_attempts)
    repo.set_dataset_last_batch(s, t, b.dataset_id, b.id, "processing")
    s.flush()
    s.refresh(b)
    return b


def stop_loading(s: Session, t: Tenant, lake: Lake, b: Batch, to_state: str) -> Batch:
    """ABORT (-> aborted) or FAIL (-> failed) a batch that is still loading: its uploads are dropped."""
    t_ms = now_ms()
    values: dict[str, Any] = {"updated_ms": t_ms, "completed_ms": t_ms}
    if to_state == "failed":
        values["errors"] = [{"code": "BATCH-FAILED-BY-CLIENT", "rows": [],
                             "description": "The client marked this batch as failed (action=FAIL)."}]
    if not transition(s, Batch, BATCH, b.id, to_state, from_states=("loading",), **values):
        s.refresh(b)
        raise _refused(b, "aborted" if to_state == "aborted" else "failed")
    repo.set_dataset_last_batch(s, t, b.dataset_id, b.id, to_state)
    s.flush()
    lake.remove_uploads(t.org, t.sandbox, b.id)
    s.refresh(b)
    return b


def revert(s: Session, t: Tenant, lake: Lake, b: Batch) -> None:
    """REVERT deletes a finished batch: its rows, its files, and its share of profiles."""
    if b.status not in ("success", "failed", "aborted"):
        raise Invalid(f"Batch {b.id} is '{b.status}': only a finished batch (success, failed, aborted) can be "
                      "reverted; abort a loading batch instead.")
    repo.delete_batch_rows(s, t, b.id)
    s.flush()
    # Rows first (same transaction), files after: a crash between leaves orphan files, never dangling rows.
    lake.remove_batch(t.org, t.sandbox, b.dataset_id, b.id)
