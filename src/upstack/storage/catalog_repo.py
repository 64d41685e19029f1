"""SQL for Catalog objects: datasets, batches, dataset files and failed rows, always scoped by tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from upstack.services.tenancy import Tenant
from upstack.storage.models import Batch, Dataset, DatasetFile, FailedRow


def get_dataset(s: Session, t: Tenant, dataset_id: str) -> Dataset | None:
    return s.scalar(select(Dataset).where(Dataset.id == dataset_id, Dataset.org == t.org, Dataset.sandbox == t.sandbox))


def list_datasets(s: Session, t: Tenant) -> Sequence[Dataset]:
    return s.scalars(select(Dataset).where(Dataset.org == t.org, Dataset.sandbox == t.sandbox)
                     .order_by(Dataset.created_ms, Dataset.id)).all()


def profile_datasets(s: Session, t: Tenant) -> Sequence[Dataset]:
    return s.scalars(select(Dataset).where(Dataset.org == t.org, Dataset.sandbox == t.sandbox,
                                           Dataset.profile_enabled.is_(True), Dataset.kind.in_(("profile", "event")))
                     .order_by(Dataset.id)).all()


def get_batch(s: Session, t: Tenant, batch_id: str) -> Batch | None:
    return s.scalar(select(Batch).where(Batch.id == batch_id, Batch.org == t.org, Batch.sandbox == t.sandbox))


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
    return s.scalar(select(DatasetFile).where(DatasetFile.id == file_id, DatasetFile.org == t.org,
                                              DatasetFile.sandbox == t.sandbox))


def failed_rows(s: Session, batch_id: str, start: int, limit: int) -> Sequence[FailedRow]:
    return s.scalars(select(FailedRow).where(FailedRow.batch_id == batch_id).order_by(FailedRow.id)
                     .offset(start).limit(limit)).all()


def count_failed_rows(s: Session, batch_id: str) -> int:
    return s.scalar(select(func.count()).select_from(FailedRow).where(FailedRow.batch_id == batch_id)) or 0
