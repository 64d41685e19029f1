"""SQL for the Profile service's own objects: tenants seen, merge policies with their versions, export jobs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from upstack.storage.dialect import storable
from upstack.storage.models import Batch, Dataset, ExportJob, MergePolicy, MergePolicyVersion
from upstack.storage.models import Tenant as TenantRow
from upstack.tenant import Tenant

# ---- tenants -----------------------------------------------------------------------------------------


def claim_tenant(s: Session, t: Tenant, now_ms: int) -> bool:
    """Insert the tenant's row if it is new. True only for the one transaction that inserted it, so the
    caller seeds per-tenant defaults exactly once even when first requests race (PostgreSQL makes the
    loser wait on the primary key and then fail inside its savepoint; SQLite has one writer anyway)."""
    if s.get(TenantRow, (t.org, t.sandbox)) is not None:
        return False
    try:
        with s.begin_nested():
            s.add(TenantRow(org=t.org, sandbox=t.sandbox, created_ms=now_ms))
            s.flush()
    except IntegrityError:
        return False
    return True


def has_tenant(s: Session, t: Tenant) -> bool:
    """Whether the sandbox was seen before: its row, or (a sandbox an older upstack filled before every first
    request claimed its row) a dataset of it."""
    if s.get(TenantRow, (t.org, t.sandbox)) is not None:
        return True
    return s.scalar(select(Dataset.id).where(Dataset.org == t.org, Dataset.sandbox == t.sandbox).limit(1)) is not None


def lock_tenant(s: Session, t: Tenant) -> None:
    """Serialise policy changes of one tenant (limits, the one default, the one edge policy) on PostgreSQL;
    SQLite transactions are already serial (BEGIN IMMEDIATE) and SQLAlchemy renders no FOR UPDATE there."""
    s.execute(select(TenantRow.org).where(TenantRow.org == t.org, TenantRow.sandbox == t.sandbox).with_for_update())


# ---- merge policies ------------------------------------------------------------------------------------
# Lookups by a client's id answer None for an id no row can have (`storable`), on both databases alike.

def get_policy(s: Session, t: Tenant, rid: str) -> MergePolicy | None:
    if not storable(rid):
        return None
    return s.scalar(select(MergePolicy).where(MergePolicy.id == rid, MergePolicy.org == t.org,
                                              MergePolicy.sandbox == t.sandbox, MergePolicy.deleted.is_(False)))


def get_policy_including_deleted(s: Session, t: Tenant, rid: str) -> MergePolicy | None:
    if not storable(rid):
        return None
    return s.scalar(select(MergePolicy).where(MergePolicy.id == rid, MergePolicy.org == t.org,
                                              MergePolicy.sandbox == t.sandbox))


def list_policies(s: Session, t: Tenant) -> Sequence[MergePolicy]:
    return s.scalars(select(MergePolicy).where(MergePolicy.org == t.org, MergePolicy.sandbox == t.sandbox,
                                               MergePolicy.deleted.is_(False))
                     .order_by(MergePolicy.created_ms, MergePolicy.id)).all()


def count_policies(s: Session, t: Tenant) -> int:
    return s.scalar(select(func.count()).select_from(MergePolicy).where(
        MergePolicy.org == t.org, MergePolicy.sandbox == t.sandbox, MergePolicy.deleted.is_(False))) or 0


def default_policy(s: Session, t: Tenant, schema_name: str) -> MergePolicy | None:
    rows = s.scalars(select(MergePolicy).where(MergePolicy.org == t.org, MergePolicy.sandbox == t.sandbox,
                                               MergePolicy.deleted.is_(False), MergePolicy.is_default.is_(True))
                     .order_by(MergePolicy.update_epoch.desc(), MergePolicy.id)).all()
    return next((p for p in rows if (p.body.get("schema") or {}).get("name") == schema_name), None)


def edge_policy(s: Session, t: Tenant) -> MergePolicy | None:
    return s.scalar(select(MergePolicy).where(MergePolicy.org == t.org, MergePolicy.sandbox == t.sandbox,
                                              MergePolicy.deleted.is_(False), MergePolicy.is_active_on_edge.is_(True))
                    .limit(1))


def clear_default(s: Session, t: Tenant, schema_name: str, except_rid: str, epoch_s: int) -> None:
    """Other defaults of the schema stop being default (AEP: a new default replaces the old one)."""
    for p in s.scalars(select(MergePolicy).where(MergePolicy.org == t.org, MergePolicy.sandbox == t.sandbox,
                                                 MergePolicy.is_default.is_(True), MergePolicy.id != except_rid)):
        if (p.body.get("schema") or {}).get("name") == schema_name:
            p.is_default = False
            p.update_epoch = epoch_s


def add_version(s: Session, t: Tenant, policy_id: str, version: int, body: dict) -> None:
    s.add(MergePolicyVersion(org=t.org, sandbox=t.sandbox, policy_id=policy_id, version=version, body=body))


def get_version(s: Session, t: Tenant, policy_id: str, version: int) -> MergePolicyVersion | None:
    if not storable(policy_id):
        return None
    return s.get(MergePolicyVersion, (t.org, t.sandbox, policy_id, version))


# ---- export jobs ---------------------------------------------------------------------------------------
# Ids are numbered per tenant, so every query names the tenant along with the id.

# One statement takes the next id: it creates the tenant's counter at 1 or adds 1 to it, and the row lock it takes
# lasts until the creating transaction commits, so concurrent creates of one tenant (threads, processes) queue
# on that row instead of colliding; an upsert never fails on the key under READ COMMITTED. SQLite and PostgreSQL
# both take this text (SQLite serialises writers anyway).
_NEXT_JOB_ID = text(
    "INSERT INTO export_job_counters (org, sandbox, last_id) VALUES (:org, :sandbox, 1) "
    "ON CONFLICT (org, sandbox) DO UPDATE SET last_id = export_job_counters.last_id + 1 "
    "RETURNING last_id")


def next_export_job_id(s: Session, t: Tenant) -> int:
    return s.execute(_NEXT_JOB_ID, {"org": t.org, "sandbox": t.sandbox}).scalar_one()


def in_tenant(t: Tenant) -> tuple:
    """The WHERE terms that scope an export job id to its tenant (also for `jobs.states.transition`)."""
    return ExportJob.org == t.org, ExportJob.sandbox == t.sandbox


def get_export_job(s: Session, t: Tenant, job_id: int, *, fresh: bool = False) -> ExportJob | None:
    """`fresh` re-reads a row this session may already hold (after a Core UPDATE changed it)."""
    return s.get(ExportJob, (t.org, t.sandbox, job_id), populate_existing=fresh)


def is_cancel_requested(s: Session, t: Tenant, job_id: int) -> bool:
    return bool(s.scalar(select(ExportJob.cancel_requested).where(ExportJob.id == job_id, *in_tenant(t))))


def request_cancel(s: Session, t: Tenant, job_id: int, now_ms: int) -> None:
    s.execute(update(ExportJob).where(ExportJob.id == job_id, *in_tenant(t), ExportJob.status.in_(("NEW", "PROCESSING")))
              .values(cancel_requested=True, update_ms=now_ms).execution_options(synchronize_session=False))


SORT_COLUMNS = {"createdTime": ExportJob.creation_ms, "updateTime": ExportJob.update_ms}


def page_export_jobs(s: Session, t: Tenant, *, sort_field: str, descending: bool, after: tuple[int, int] | None,
                     skip: int, limit: int, statuses: Sequence[str]) -> Sequence[ExportJob]:
    """Keyset page over (sort column, id) within the tenant: rows strictly after `after` in the sort order."""
    col = SORT_COLUMNS[sort_field]
    q = select(ExportJob).where(*in_tenant(t))
    if statuses:
        q = q.where(ExportJob.status.in_(tuple(statuses)))
    if after is not None:
        value, last_id = after
        if descending:
            q = q.where(or_(col < value, and_(col == value, ExportJob.id < last_id)))
        else:
            q = q.where(or_(col > value, and_(col == value, ExportJob.id > last_id)))
    order = (col.desc(), ExportJob.id.desc()) if descending else (col.asc(), ExportJob.id.asc())
    return s.scalars(q.order_by(*order).offset(skip).limit(limit)).all()


def export_batches(s: Session, t: Tenant, job_id: int) -> Sequence[Batch]:
    return s.scalars(select(Batch).where(Batch.org == t.org, Batch.sandbox == t.sandbox, Batch.export_job_id == job_id,
                                         Batch.origin == "export")
                     .order_by(Batch.created_ms, Batch.id)).all()
