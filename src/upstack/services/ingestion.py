"""Batch Ingestion domain: create batches, accept their uploads, and complete, abort, fail or revert them.

Completing a batch only moves it to ``processing`` and queues an ``ingest`` job in the same transaction;
the conversion itself is `upstack.worker.ingest`. The moment of COMPLETE is the batch's ``started_ms``
(Catalog ``started`` / ``metrics.startTime``), and it is also the ingestion time every record of the
batch carries (``_acp_system_metadata.ingestTime``): AEP calls it the batch's completion time, and it
must not move when a crashed job is re-run later.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from upstack.config import Settings
from upstack.jobs import queue
from upstack.jobs.states import BATCH, transition
from upstack.lake import (
    Bounds,
    Lake,
    PendingUpload,
    RefusedFile,
    UnreadableFile,
    UnsafePath,
    UploadedFile,
    validate_upload_path,
)
from upstack.lake import TooLarge as LakeTooLarge
from upstack.lake.records import convert_file
from upstack.schemas.ingestion import ACTIONS, CreateImportBatch, ImportInputFormat
from upstack.services.catalog import get_batch, now_ms
from upstack.services.errors import Invalid, NotFound, TooLarge
from upstack.storage import catalog_repo as repo
from upstack.storage.models import Batch
from upstack.tenant import Tenant

JOB_KIND = "ingest"


def new_batch_id() -> str:
    return uuid.uuid4().hex


# ---- create ----------------------------------------------------------------------------------------

def _input_format(value: Any) -> dict[str, Any]:
    """An `inputFormat` object as a batch keeps it, checked by its model (schemas/ingestion.py): Catalog's batch
    writes and the upload preview read formats this way too."""
    return ImportInputFormat.model_validate(value).params()


def create_batch(s: Session, t: Tenant, body: CreateImportBatch) -> Batch:
    return _new_batch(s, t, body.datasetId, body.inputFormat.params())


def open_catalog_batch(s: Session, t: Tenant, dataset_id: Any, input_format: dict[str, Any] | None, *,
                       batch_id: str | None = None) -> Batch:
    """Catalog's way to open a batch (`upstack.services.batches`): `inputFormat` defaults to the dataset's
    `fileDescription.format` (parquet unless it says json)."""
    if input_format is not None:
        return _new_batch(s, t, dataset_id, input_format, batch_id=batch_id)
    ds = repo.get_dataset(s, t, dataset_id) if isinstance(dataset_id, str) else None
    declared = str(((ds.body or {}).get("fileDescription") or {}).get("format", "")).lower() if ds else ""
    return _new_batch(s, t, dataset_id, _input_format({"format": "json" if declared == "json" else "parquet"}),
                      batch_id=batch_id)


def _new_batch(s: Session, t: Tenant, dataset_id: str | None, input_format: dict[str, Any], *,
               batch_id: str | None = None) -> Batch:
    if not isinstance(dataset_id, str) or not dataset_id.strip():  # Catalog's way may name none
        raise Invalid("'datasetId' is required and must be a non-empty string.")
    ds = repo.get_dataset(s, t, dataset_id.strip())
    if ds is None:
        raise NotFound("DataSet not found.")
    if ds.kind == "export":
        raise Invalid(f"DataSet '{ds.id}' is an export target (profile__union schema); it cannot be ingested into.")
    t_ms = now_ms()
    b = Batch(id=batch_id or new_batch_id(), org=t.org, sandbox=t.sandbox, dataset_id=ds.id, origin="ingestion",
              status="loading", input_format=input_format, created_ms=t_ms, updated_ms=t_ms,
              records_read=0, records_written=0, records_failed=0, errors=[])
    s.add(b)
    repo.set_dataset_last_batch(s, t, ds.id, b.id, "loading", new_batch=True)
    s.flush()
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
    _require_loading(b)
    return b, rel


def _require_loading(b: Batch) -> None:
    if b.status != "loading":
        raise Invalid(f"Batch {b.id} is '{b.status}': files can be uploaded only while it is 'loading'.")


class Upload:
    """An upload being received, chunk by chunk, into a locked temp file; nothing of it is visible until
    `accept_upload`. For a large-file part, `expected` is the length its Content-Range announces."""

    def __init__(self, pending: PendingUpload, expected: int | None = None):
        self.pending = pending
        self.expected = expected
        self._part = 0

    def write(self, chunk: bytes) -> None:
        self._part += len(chunk)
        if self.expected is not None and self._part > self.expected:
            raise Invalid(f"The part is longer than its Content-Range ({self.expected} bytes).")
        try:
            self.pending.write(chunk)
        except LakeTooLarge as exc:
            raise TooLarge(f"File '{self.pending.relpath}' is larger than the upload limit of {exc.max_bytes} "
                           "bytes.") from None

    def finish(self) -> None:
        if self.expected is not None and self._part != self.expected:
            raise Invalid(f"The part has {self._part} bytes but its Content-Range announces {self.expected}.")
        self.pending.finish()

    def discard(self) -> None:
        self.pending.discard()


def begin_upload(lake: Lake, b: Batch, rel: str, max_bytes: int) -> Upload:
    try:
        return Upload(lake.begin_upload(b.org, b.sandbox, b.id, b.dataset_id, rel, max_bytes=max_bytes))
    except UnsafePath as exc:
        raise Invalid(f"Invalid file path '{rel}': {exc}.") from None


def receive_upload(lake: Lake, b: Batch, rel: str, data: bytes | memoryview | Iterable[bytes],
                   max_bytes: int) -> PendingUpload:
    """Receive one upload whole, beside the batch (nothing visible yet); oversize ones leave nothing behind."""
    upload = begin_upload(lake, b, rel, max_bytes)
    try:
        for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
            upload.write(chunk)
        upload.finish()
    except BaseException:
        upload.discard()
        raise
    return upload.pending


def accept_upload(s: Session, t: Tenant, batch_id: str, pending: PendingUpload) -> UploadedFile:
    """Make a received upload part of its batch, under the batch's row lock: COMPLETE and ABORT take the
    same lock, so an upload lands before them (and is ingested) or is refused after them (and dropped).
    A 200 therefore always means the bytes are part of the batch (CONTRACT §4)."""
    b = repo.lock_batch(s, t, batch_id)
    if b is None:
        pending.discard()
        raise NotFound("Batch not found.")
    try:
        _require_loading(b)
    except Invalid:
        pending.discard()
        raise
    try:
        return pending.commit()
    except UnsafePath as exc:
        raise Invalid(f"Invalid file path '{pending.relpath}': {exc}.") from None


# Large files (> 256 MB in AEP) arrive as INITIALIZE, PATCH parts with Content-Range, COMPLETE. The lake
# writes uploads whole, so each part rewrites the file: what was received before the part's first byte,
# then the part. Parts in order cost a copy each; a retried part simply replaces its range.
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*")
_COPY_CHUNK = 1 << 20


def begin_part(lake: Lake, b: Batch, rel: str, content_range: str | None, max_bytes: int) -> Upload:
    """A part of a large file: the new file is what was received before the part's first byte, then the
    part (written by the caller). Parts in order cost a copy each; a retried part replaces its range."""
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    if match is None:
        raise Invalid("Header 'Content-Range: bytes <first>-<last>/<total>' is required for a file part.")
    first, last = int(match.group(1)), int(match.group(2))
    if last < first:
        raise Invalid(f"Content-Range '{content_range}' ends before it starts.")
    path = lake.upload_path(b.org, b.sandbox, b.id, b.dataset_id, rel)
    if not path.is_file():
        raise NotFound(f"File '{rel}' was not initialized in batch {b.id}: POST ?action=INITIALIZE first.")
    received = path.stat().st_size
    if first > received:
        raise Invalid(f"The part starts at byte {first} but only {received} bytes of '{rel}' were received; "
                      "send parts in order.")
    upload = begin_upload(lake, b, rel, max_bytes)
    try:
        for chunk in _prefix(path, first):
            upload.pending.write(chunk)  # bytes received before, not the part's own
    except BaseException:
        upload.discard()
        raise
    upload.expected = last - first + 1
    return upload


def _prefix(path: Path, length: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        while length > 0:
            chunk = f.read(min(_COPY_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def complete_large_file(lake: Lake, b: Batch, rel: str) -> int:
    size = uploaded_size(lake, b, b.dataset_id, rel)
    if size is None:
        raise NotFound(f"File '{rel}' was not initialized in batch {b.id}.")
    return size


def uploaded_size(lake: Lake, b: Batch, dataset_id: str, rel: str) -> int | None:
    if dataset_id != b.dataset_id:
        return None
    path = lake.upload_path(b.org, b.sandbox, b.id, b.dataset_id, rel)
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


# ---- preview of the uploads so far -----------------------------------------------------------------

def upload_preview(s: Session, t: Tenant, lake: Lake, settings: Settings, batch_id: str, dataset_id: str,
                   fmt: str | None, multiline: bool | None, nrow: int) -> dict[str, Any]:
    """The first `nrow` accepted records of the files uploaded so far, converted as the ingest job will."""
    b = get_batch(s, t, batch_id)
    ds = repo.get_dataset(s, t, dataset_id)
    if ds is None or b.dataset_id != ds.id:
        raise NotFound("DataSet not found in this batch.")
    declared = b.input_format or {}
    fmt_params = _input_format({"format": fmt or declared.get("format", "json"),
                                "isMultiLineJson": declared.get("isMultiLineJson", False) if multiline is None
                                else multiline})
    rows: list[dict] = []
    for upload in lake.list_uploads(t.org, t.sandbox, b.id):
        if len(rows) >= nrow:
            break
        if upload.dataset_id != ds.id:
            continue
        try:
            converted = convert_file(upload.path, fmt_params["format"], fmt_params.get("isMultiLineJson", False),
                                     "event" if ds.kind == "event" else "profile", batch_id=b.id,
                                     ingest_time_ms=now_ms(), row_offset=len(rows), file_name=upload.relpath,
                                     bounds=Bounds(settings.max_record_depth, settings.max_record_fields))
        except UnreadableFile as exc:
            raise Invalid(f"File '{upload.relpath}' cannot be read as {fmt_params['format']}: {exc.reason}.") from None
        except RefusedFile as exc:
            raise Invalid(f"File '{upload.relpath}' would be refused ({exc.code}): {exc.reason}.") from None
        if converted.table is not None:
            table = converted.table.drop_columns(["_acp_system_metadata"])
            rows.extend(table.slice(0, nrow - len(rows)).to_pylist(maps_as_pydicts="lossy"))
    columns = list(dict.fromkeys(name for row in rows for name in row))
    # default=str: timestamps and binary values become text, as a preview shows them.
    safe_rows = orjson.loads(orjson.dumps(rows, default=str))
    return {"formatParams": fmt_params,
            "preview": {"columns": [{"cid": str(i), "name": n} for i, n in enumerate(columns)], "rows": safe_rows}}


# ---- actions ---------------------------------------------------------------------------------------

def act(s: Session, t: Tenant, lake: Lake, settings: Settings, batch_id: str, action: str | None) -> Batch:
    """Apply `?action=`; returns the batch as it is now (after REVERT: as it was, with status `deleted`)."""
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
        s.expunge(b)  # its row is gone: the answer is the batch as it was, never written back
        b.status = "deleted"
        return b
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
