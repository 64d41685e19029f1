"""SQL for the local controls: wiping one tenant or everything, reading worker heartbeats."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from upstack.storage.dialect import storable
from upstack.storage.models import (
    Batch,
    Dataset,
    DatasetFile,
    ExportJob,
    FailedRow,
    Job,
    MergePolicy,
    MergePolicyVersion,
    ProfileDeletion,
    StoreBatch,
    StoreFile,
    StoreIdentity,
    StoreRecord,
    StoreTenant,
    Tenant,
    Worker,
)

TENANT_TABLES = (DatasetFile, Batch, Dataset, Job, ExportJob, MergePolicy, MergePolicyVersion, ProfileDeletion, Tenant)


def wipe(s: Session, org: str | None, sandbox: str | None) -> None:
    if not storable(org or "", sandbox or ""):
        return  # no tenant can have that name: nothing to wipe

    def within(q, model):
        if org is not None:
            q = q.where(model.org == org)
        if sandbox is not None:
            q = q.where(model.sandbox == sandbox)
        return q

    # Failed rows have no tenant columns of their own: they go with their batches; the profile store's tables
    # are keyed by the tenant's store number.
    s.execute(delete(FailedRow).where(FailedRow.batch_id.in_(within(select(Batch.id), Batch))))
    store_ids = within(select(StoreTenant.id), StoreTenant)
    for model in (StoreRecord, StoreIdentity, StoreFile, StoreBatch):
        s.execute(delete(model).where(model.tenant_id.in_(store_ids)))
    for model in (*TENANT_TABLES, StoreTenant):
        s.execute(within(delete(model), model))


def workers(s: Session) -> Sequence[Worker]:
    return s.scalars(select(Worker).order_by(Worker.started_ms)).all()


def sandboxes_of(s: Session, org: str) -> set[str]:
    found: set[str] = set()
    if not storable(org):
        return found
    for model in (Dataset, Batch, Tenant, ExportJob):
        found.update(s.scalars(select(model.sandbox).where(model.org == org).distinct()).all())
    return found


def tenants(s: Session, limit: int) -> list[tuple[str, str]]:
    """Some (org, sandbox) pairs that hold data or merge policies, for the console's tenant picker."""
    found: set[tuple[str, str]] = set()
    for model in (Dataset, Tenant):
        found.update((o, sb) for o, sb in s.execute(select(model.org, model.sandbox).distinct().limit(limit)).all())
    return sorted(found)[:limit]
