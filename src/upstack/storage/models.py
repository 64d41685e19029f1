"""SQLAlchemy models of every durable object; the Alembic migrations are generated from and checked against these."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names are fixed so migrations are stable across SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))  # profile | event | export
    profile_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # client-supplied properties (schemaRef, tags, description, ...)
    version: Mapped[str] = mapped_column(String(32), default="1.0.0")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    last_batch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_batch_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    __table_args__ = (Index("ix_datasets_tenant_created", "org", "sandbox", "created_ms"),)


class Batch(Base):
    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[str] = mapped_column(String(255))
    dataset_id: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(16))  # ingestion | export
    status: Mapped[str] = mapped_column(String(16))
    input_format: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    started_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    completed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    records_read: Mapped[int] = mapped_column(BigInteger, default=0)
    records_written: Mapped[int] = mapped_column(BigInteger, default=0)
    records_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    export_job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # an id within the batch's tenant
    # What a client set through Catalog's batch writes and the server only keeps and shows: externalId, tags,
    # replay, availableDates, size.
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    __table_args__ = (
        Index("ix_batches_tenant_created", "org", "sandbox", "created_ms"),
        Index("ix_batches_dataset", "dataset_id"),
        Index("ix_batches_export_job", "org", "sandbox", "export_job_id"),
    )


class DatasetFile(Base):
    """A Data Access `dataSetFileId`: one published directory of Parquet parts of one batch."""

    __tablename__ = "dataset_files"
    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    org: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[str] = mapped_column(String(255))
    batch_id: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(32))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (Index("ix_dataset_files_batch", "batch_id"), Index("ix_dataset_files_dataset", "dataset_id"))


class FailedRow(Base):
    __tablename__ = "failed_rows"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(String(1024))
    row: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    record: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (Index("ix_failed_rows_batch", "batch_id", "id"),)


class Job(Base):
    """A unit of durable background work: claimed with a lease, renewed by heartbeat, retried on failure."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # ingest | export | store (lane: jobs/lanes.py)
    subject_id: Mapped[str] = mapped_column(String(64))  # batch id, export job id (within org/sandbox) or policy id
    org: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # queued | running | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after_ms: Mapped[int] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # "PROCESSING" while manual pacing holds the running job at that point (CONTRACT §10); NULL otherwise.
    hold: Mapped[str | None] = mapped_column(String(16), nullable=True)
    __table_args__ = (Index("ix_jobs_claim", "status", "run_after_ms"), Index("ix_jobs_subject", "kind", "subject_id"))


class Worker(Base):
    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_ms: Mapped[int] = mapped_column(BigInteger)
    heartbeat_ms: Mapped[int] = mapped_column(BigInteger)
    current_job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    jobs_done: Mapped[int] = mapped_column(BigInteger, default=0)
    # The job lanes it claims from, in order, comma-separated (jobs/lanes.py); NULL for a row of an older version.
    lanes: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ExportJob(Base):
    """Keyed by tenant and id: ids count 1, 2, 3 ... in each tenant (`ExportJobCounter`), so one tenant's ids say
    nothing of another's activity, and the same id in two tenants names two jobs."""

    __tablename__ = "export_jobs"
    org: Mapped[str] = mapped_column(String(255), primary_key=True)
    sandbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))  # NEW | PROCESSING | SUCCEEDED | FAILED
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the normalised create body
    request_id: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[str] = mapped_column(String(64))
    merge_policy_id: Mapped[str] = mapped_column(String(64))
    merge_policy_version: Mapped[int] = mapped_column(Integer)
    creation_ms: Mapped[int] = mapped_column(BigInteger)
    update_ms: Mapped[int] = mapped_column(BigInteger)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    compute_gateway: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    destination_batches: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    __table_args__ = (Index("ix_export_jobs_tenant_created", "org", "sandbox", "creation_ms", "id"),)


class ExportJobCounter(Base):
    """The last export job id each tenant was given; a create takes the next in its own transaction."""

    __tablename__ = "export_job_counters"
    org: Mapped[str] = mapped_column(String(255), primary_key=True)
    sandbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)


class MergePolicy(Base):
    """Keyed by tenant and id: every tenant has its own `timestampOrdered-none-mp`."""

    __tablename__ = "merge_policies"
    org: Mapped[str] = mapped_column(String(255), primary_key=True)
    sandbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active_on_edge: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    update_epoch: Mapped[int] = mapped_column(BigInteger)


class MergePolicyVersion(Base):
    """Every version a policy ever had, so an export job can name an older one."""

    __tablename__ = "merge_policy_versions"
    org: Mapped[str] = mapped_column(String(255), primary_key=True)
    sandbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class SegmentDefinition(Base):
    """A segment definition (PQL over merged profiles), keyed by tenant and id; its name is unique per tenant. The
    evaluation modes are columns so that the list filters on them in SQL; the rest of the definition is `body`."""

    __tablename__ = "segment_definitions"
    org: Mapped[str] = mapped_column(String(255), primary_key=True)
    sandbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # at most 400 characters (schemas/segment_definitions.py NAME: the unique index's entry fits PostgreSQL's B-tree)
    name: Mapped[str] = mapped_column(String(512))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    batch: Mapped[bool] = mapped_column(Boolean)
    continuous: Mapped[bool] = mapped_column(Boolean)
    synchronous: Mapped[bool] = mapped_column(Boolean)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("org", "sandbox", "name", name="uq_segment_definitions_name"),)


class ImsToken(Base):
    __tablename__ = "ims_tokens"
    token: Mapped[str] = mapped_column(String(128), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))
    expires_ms: Mapped[int] = mapped_column(BigInteger)


class Tenant(Base):
    """Tenants seen so far: seeding per-tenant defaults (the default merge policy) happens once per row."""

    __tablename__ = "tenants"
    org: Mapped[str] = mapped_column(String(255), primary_key=True)
    sandbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class Control(Base):
    """Local test controls (CONTRACT §10): job pacing, forced job failures, injected route faults."""

    __tablename__ = "controls"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class ProfileDeletion(Base):
    """A profile deleted through `DELETE /access/entities`: lookups and exports leave out the profile of this
    identity (under pdg its whole graph) while all its fragments are older than `deleted_ms`; the lake keeps
    the records. Deleting again adds a row (the newest counts)."""

    __tablename__ = "profile_deletions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[str] = mapped_column(String(255))
    namespace: Mapped[str] = mapped_column(Text)
    identity: Mapped[str] = mapped_column(Text)
    deleted_ms: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_profile_deletions_tenant", "org", "sandbox"),)


class MetricTotal(Base):
    """Cumulative totals behind `GET /_upstack/metrics` that the tables themselves cannot give cheaply: job runs by
    kind, outcome and duration bucket, records ingested, profiles exported. Each is added to in the transaction that
    makes its event visible (a job's outcome, a batch's success, an export's SUCCEEDED), so every process reads the
    same totals; a scrape reads this small table instead of aggregating every job or batch ever made. A reset keeps
    the totals: they are Prometheus counters and only grow."""

    __tablename__ = "metric_totals"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # job_runs | records_ingested | profiles_exported
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # job kind; '' when the total has none
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)  # job_runs: succeeded | failed | retried
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)  # job_runs: index of the duration's bucket
    value: Mapped[int] = mapped_column(BigInteger)  # a count (runs, records, profiles)
    sum_ms: Mapped[int] = mapped_column(BigInteger)  # job_runs: their durations' sum in milliseconds


# -- the profile store (services/profile_store.py): an identity graph and a fragment index per tenant ---------

class StoreTenant(Base):
    """A tenant's profile store: its number in the store tables (short keys instead of org and sandbox texts),
    the next component number, and the row every store update locks first, so that one tenant's updates run
    one at a time (two workers ingesting into one sandbox) while other tenants' run beside them."""

    __tablename__ = "store_tenants"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[str] = mapped_column(String(255))
    next_component: Mapped[int] = mapped_column(BigInteger, default=1)
    # Bumped by every transaction that changes the tenant's store (they all take the lock first): a reader of
    # several statements compares it before and after to know it saw one state.
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    __table_args__ = (Index("ix_store_tenants_tenant", "org", "sandbox", unique=True),)


class StoreBatch(Base):
    """A batch the store indexes: `done` once every record is in, `indexed` records so far (a run that gave
    way to user work resumes there)."""

    __tablename__ = "store_batches"
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    dataset_id: Mapped[str] = mapped_column(String(32))
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed: Mapped[int] = mapped_column(BigInteger, default=0)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_store_batches_tenant", "tenant_id"),)


class StoreFile(Base):
    """A published lake file of an indexed batch; `relpath` is relative to the data directory."""

    __tablename__ = "store_files"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    batch_id: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # profile | event
    relpath: Mapped[str] = mapped_column(Text)
    __table_args__ = (Index("ix_store_files_batch", "batch_id"),)


class StoreIdentity(Base):
    """The identity graph: each identity's component (pdg over every profile and event record of the tenant)."""

    __tablename__ = "store_identities"
    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    namespace: Mapped[str] = mapped_column(Text, primary_key=True)
    identity: Mapped[str] = mapped_column(Text, primary_key=True)
    component: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_store_identities_component", "tenant_id", "component"), {"sqlite_with_rowid": False})


class StoreRecord(Base):
    """The fragment index: where each record of a component is (file, row)."""

    __tablename__ = "store_records"
    file_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    row: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    component: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_store_records_component", "tenant_id", "component"), {"sqlite_with_rowid": False})
