"""SQL for Catalog objects: datasets, batches, dataset files and failed rows, always scoped by tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from upstack.storage.dialect import storable
from upstack.storage.models import Batch, Dataset, DatasetFile, FailedRow
from upstack.tenant import Tenant

# Lookups by a client's id answer None for an id no row can have (`storable`), on both databases alike.


def get_dataset(s: Session, t: Tenant, dataset_id: str) -> Dataset | None:
    if not storable(dataset_id):
        return None
    return s.scalar(select(Dataset).where(Dataset.id == dataset_id, Dataset.org == t.org, Dataset.sandbox == t.sandbox))


def list_datasets(s: Session, t: Tenant) -> Sequence[Dataset]:
    return s.scalars(select(Dataset).where(Dataset.org == t.org, Dataset.sandbox == t.sandbox)
                     .order_by(Dataset.created_ms, Dataset.id)).all()


def profile_datasets(s: Session, t: Tenant) -> Sequence[Dataset]:
    return s.scalars(select(Dataset).where(Dataset.org == t.org, Dataset.sandbox == t.sandbox,
                                           Dataset.profile_enabled.is_(True), Dataset.kind.in_(("profile", "event")))
                     .order_by(Dataset.id)).all()


def get_batch(s: Session, t: Tenant, batch_id: str) -> Batch | None:
    if not storable(batch_id):
        return None
    return s.scalar(select(Batch).where(Batch.id == batch_id, Batch.org == t.org, Batch.sandbox == t.sandbox))


def lock_batch(s: Session, t: Tenant, batch_id: str) -> Batch | None:
    """The batch with its row locked until the transaction ends (SQLite: the writer lock is held already),
    so a state move of the batch (COMPLETE, ABORT) waits for whatever this transaction decides."""
    return s.scalar(select(Batch).where(Batch.id == batch_id, Batch.org == t.org, Batch.sandbox == t.sandbox)
                    .with_for_update().execution_options(populate_existing=True))


def get_batch_any_tenant(s: Session, batch_id: str) -> Batch | None:
    return s.get(Batch, batch_id)


def list_batches(s: Session, t: Tenant, dataset_id: str | None = None) -> Sequence[Batch]:
    q = select(Batch).where(Batch.org == t.org, Batch.sandbox == t.sandbox)
    if dataset_id:
        q = q.where(Batch.dataset_id == dataset_id)
    return s.scalars(q.order_by(Batch.created_ms, Batch.id)).all()


def successful_batch_ids(s: Session, t: Tenant, dataset_id: str) -> Sequence[str]:
    return s.scalars(select(Batch.id).where(Batch.org == t.org, Batch.sandbox == t.sandbox,
                                            Batch.dataset_id == dataset_id, Batch.status == "success")
                     .order_by(Batch.completed_ms, Batch.id)).all()


def delete_dataset_rows(s: Session, t: Tenant, dataset_id: str) -> None:
    batch_ids = select(Batch.id).where(Batch.dataset_id == dataset_id, Batch.org == t.org, Batch.sandbox == t.sandbox)
    s.execute(delete(FailedRow).where(FailedRow.batch_id.in_(batch_ids)))
    s.execute(delete(DatasetFile).where(DatasetFile.dataset_id == dataset_id, DatasetFile.org == t.org,
                                        DatasetFile.sandbox == t.sandbox))
    s.execute(delete(Batch).where(Batch.dataset_id == dataset_id, Batch.org == t.org, Batch.sandbox == t.sandbox))
    s.execute(delete(Dataset).where(Dataset.id == dataset_id, Dataset.org == t.org, Dataset.sandbox == t.sandbox))


def files_of_batch(s: Session, t: Tenant, batch_id: str) -> Sequence[DatasetFile]:
    return s.scalars(select(DatasetFile).where(DatasetFile.batch_id == batch_id, DatasetFile.org == t.org,
                                               DatasetFile.sandbox == t.sandbox).order_by(DatasetFile.id)).all()


def get_file(s: Session, t: Tenant, file_id: str) -> DatasetFile | None:
    if not storable(file_id):
        return None
    return s.scalar(select(DatasetFile).where(DatasetFile.id == file_id, DatasetFile.org == t.org,
                                              DatasetFile.sandbox == t.sandbox))


def failed_rows(s: Session, batch_id: str, start: int, limit: int) -> Sequence[FailedRow]:
    return s.scalars(select(FailedRow).where(FailedRow.batch_id == batch_id).order_by(FailedRow.id)
                     .offset(start).limit(limit)).all()


def count_failed_rows(s: Session, batch_id: str) -> int:
    return s.scalar(select(func.count()).select_from(FailedRow).where(FailedRow.batch_id == batch_id)) or 0


# ---- ingestion / data access

def delete_batch_outputs(s: Session, batch_id: str) -> None:
    """Forget what an earlier run of a batch's ingest job recorded, so a re-run starts clean."""
    s.execute(delete(FailedRow).where(FailedRow.batch_id == batch_id))
    s.execute(delete(DatasetFile).where(DatasetFile.batch_id == batch_id))


def delete_batch_rows(s: Session, t: Tenant, batch_id: str) -> None:
    delete_batch_outputs(s, batch_id)
    s.execute(delete(Batch).where(Batch.id == batch_id, Batch.org == t.org, Batch.sandbox == t.sandbox))


def insert_failed_rows(s: Session, batch_id: str, rows: Sequence[dict], chunk: int = 5000) -> None:
    """Bulk insert of `{file, row, code, message, record}` dicts, in chunks to bound each statement."""
    for at in range(0, len(rows), chunk):
        s.execute(FailedRow.__table__.insert(), [dict(r, batch_id=batch_id) for r in rows[at:at + chunk]])


def visible_files_of_dataset(s: Session, t: Tenant, dataset_id: str) -> Sequence[DatasetFile]:
    """Files of a dataset's successful batches, oldest batch first: all that Data Access may show of it."""
    return s.scalars(
        select(DatasetFile).join(Batch, Batch.id == DatasetFile.batch_id)
        .where(DatasetFile.dataset_id == dataset_id, DatasetFile.org == t.org, DatasetFile.sandbox == t.sandbox,
               Batch.org == t.org, Batch.sandbox == t.sandbox, Batch.status == "success")
        .order_by(Batch.completed_ms, Batch.id, DatasetFile.id)).all()


def set_dataset_last_batch(s: Session, t: Tenant, dataset_id: str, batch_id: str, status: str,
                           *, new_batch: bool = False) -> None:
    """lastBatchId/lastBatchStatus follow a dataset's newest batch: a new batch takes the slot, later moves of
    that batch update its status, moves of older batches leave it alone."""
    ds = get_dataset(s, t, dataset_id)
    if ds is not None and (new_batch or ds.last_batch_id == batch_id):
        ds.last_batch_id = batch_id
        ds.last_batch_status = status


# ---- bounded reads for the local console (newest first) --------------------------------------------------

def recent_datasets(s: Session, t: Tenant, limit: int) -> Sequence[Dataset]:
    return s.scalars(select(Dataset).where(Dataset.org == t.org, Dataset.sandbox == t.sandbox)
                     .order_by(Dataset.created_ms.desc(), Dataset.id.desc()).limit(limit)).all()


def recent_batches(s: Session, t: Tenant, limit: int) -> Sequence[Batch]:
    return s.scalars(select(Batch).where(Batch.org == t.org, Batch.sandbox == t.sandbox)
                     .order_by(Batch.created_ms.desc(), Batch.id.desc()).limit(limit)).all()
