"""Catalog's batch writes (`/data/foundation/catalog/batches`): create (with or without the id), update and
delete a batch. A batch made here is the same kind as one opened by Batch Ingestion: files are uploaded through
the import API, COMPLETE ingests it, Data Access shows its files.

Status changes go through the same moves as the import API's actions (CONTRACT §4): `loading -> processing` is
COMPLETE (it queues the ingest job), `loading -> aborted | failed` are ABORT and FAIL. Finishing a processing
batch belongs to its ingest job and an export batch to its export job, so a client cannot make those moves.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from upstack.config import Settings
from upstack.jobs.states import BATCH
from upstack.lake import Lake
from upstack.schemas.catalog import CatalogBatchPatch, CatalogBatchRequest
from upstack.services import ingestion, profile_store
from upstack.services.catalog import get_batch, now_ms
from upstack.services.errors import Conflict, Invalid, NotFound
from upstack.storage import catalog_repo as repo
from upstack.storage.models import Batch
from upstack.tenant import Tenant

BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def create(s: Session, t: Tenant, req: CatalogBatchRequest, batch_id: str | None = None) -> Batch:
    if batch_id is not None:
        if not BATCH_ID.fullmatch(batch_id):
            raise Invalid("A batch id is 1 to 64 letters, digits, '_' or '-', starting with a letter or digit.")
        if repo.get_batch_any_tenant(s, batch_id) is not None:
            raise Conflict(f"Batch '{batch_id}' already exists.")
    fmt = req.input_format()
    if fmt is not None:
        fmt = ingestion._input_format(fmt)
    b = ingestion.open_catalog_batch(s, t, req.dataset_id(), fmt, batch_id=batch_id)
    kept = req.kept()
    if kept:
        b.attributes = kept
    s.flush()
    return b


def update(s: Session, t: Tenant, lake: Lake, settings: Settings, batch_id: str, req: CatalogBatchPatch, *,
           replace: bool) -> Batch:
    """PATCH (a CatalogBatchPatch) changes the attributes given; PUT (`replace`, a CatalogBatchPut, whose
    `status` is required) replaces them."""
    get_batch(s, t, batch_id)
    b = repo.lock_batch(s, t, batch_id)
    if b is None:
        raise NotFound("Batch not found.")
    dataset_id = req.dataset_id()
    if dataset_id is not None and dataset_id != b.dataset_id:
        raise Invalid(f"Batch {b.id} belongs to dataset {b.dataset_id}; its dataset cannot be changed.")
    fmt = req.input_format()
    if fmt is not None:
        fmt = ingestion._input_format(fmt)
        if fmt != (b.input_format or {}):
            if b.status != "loading" or b.origin != "ingestion":
                raise Invalid(f"Batch {b.id} is '{b.status}': its inputFormat can change only while it is loading.")
            b.input_format = fmt
    if req.status is not None and req.status != b.status:
        _check_move(b, req.status)
    kept = req.kept()
    b.attributes = kept if replace else {**(b.attributes or {}), **kept} or None
    b.updated_ms = now_ms()
    s.flush()
    if req.status is not None and req.status != b.status:
        if req.status == "processing":
            ingestion.complete(s, t, settings, b)
        else:
            ingestion.stop_loading(s, t, lake, b, req.status)
    s.refresh(b)
    return b


def _check_move(b: Batch, to_state: str) -> None:
    if b.origin != "ingestion":
        raise Invalid(f"Batch {b.id} belongs to an export job; only its job changes its status.")
    # The batch state table's moves out of loading (a processing batch is its ingest job's to end).
    if b.status == "loading" and to_state in BATCH["loading"]:
        return
    if b.status == "processing":
        why = "its ingest job is processing it and decides how it ends"
    elif b.status == "loading":
        why = f"a loading batch moves only to {', '.join(sorted(BATCH['loading']))}"
    else:
        why = f"'{b.status}' is final"
    raise Invalid(f"Batch {b.id} cannot move from '{b.status}' to '{to_state}': {why}.")


def delete(s: Session, t: Tenant, lake: Lake, batch_id: str) -> None:
    """The batch, its files, its rejected rows and its share of profiles go (as REVERT, but for any batch that
    no job is working on: a loading batch's uploads go too)."""
    get_batch(s, t, batch_id)
    b = repo.lock_batch(s, t, batch_id)
    if b is None:
        raise NotFound("Batch not found.")
    if b.status == "processing":
        raise Invalid(f"Batch {b.id} is being processed; delete it once it is finished.")
    if b.origin != "ingestion" and b.status == "loading":
        raise Invalid(f"Batch {b.id} is being written by its export job; cancel the job first.")
    repo.delete_batch_rows(s, t, b.id)
    profile_store.request_sync(s, t)  # its records leave the store's index, their components split
    s.flush()
    # Rows first (same transaction), files after: a crash between leaves orphan files, never dangling rows.
    lake.remove_batch(t.org, t.sandbox, b.dataset_id, b.id)
