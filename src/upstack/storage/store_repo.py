"""SQL of the profile store (services/profile_store.py): the identity graph and the fragment index per tenant.

Bulk writes go through `bulk_insert`: one `executemany` on SQLite, `COPY` on PostgreSQL (psycopg), because a
batch of a million records adds a million index rows and row-at-a-time statements would cost more than the
ingestion itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import String, cast, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from upstack.storage.dialect import is_sqlite
from upstack.storage.models import (
    Batch,
    Dataset,
    StoreBatch,
    StoreFile,
    StoreIdentity,
    StoreRecord,
    StoreTenant,
)
from upstack.tenant import Tenant

PROBE_CHUNK = 50_000  # identities sent to the probe table per statement
IN_CHUNK = 10_000  # components named in one statement


def bulk_insert(s: Session, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert many rows in the session's transaction, as fast as the database takes them."""
    conn = s.connection()
    raw = conn.connection.driver_connection
    if is_sqlite(conn.engine):  # the driver's executemany takes an iterator: no list of a million tuples
        marks = ", ".join("?" for _ in columns)
        raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        return
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# -- tenants ---------------------------------------------------------------------------------------------

def tenant_id(s: Session, t: Tenant) -> int | None:
    return s.scalar(select(StoreTenant.id).where(StoreTenant.org == t.org, StoreTenant.sandbox == t.sandbox))


def ensure_tenant(s: Session, t: Tenant) -> int:
    found = tenant_id(s, t)
    if found is not None:
        return found
    return s.execute(insert(StoreTenant).values(org=t.org, sandbox=t.sandbox, next_component=1)
                     .returning(StoreTenant.id)).scalar_one()


def lock_tenant(s: Session, tid: int) -> None:
    """Take the tenant's store lock for the rest of the transaction: a write to its row (a row lock on
    PostgreSQL; SQLite's write transactions are serial already), which bumps its version."""
    s.execute(update(StoreTenant).where(StoreTenant.id == tid).values(version=StoreTenant.version + 1))


def version(s: Session, tid: int) -> int:
    """The tenant's store version: it changes with every transaction that changes the store."""
    return int(s.scalar(select(StoreTenant.version).where(StoreTenant.id == tid)) or 0)


def next_component(s: Session, tid: int) -> int:
    return s.scalar(select(StoreTenant.next_component).where(StoreTenant.id == tid))


def allocate_components(s: Session, tid: int, count: int) -> int:
    """The first of `count` new component numbers of the tenant."""
    last = s.execute(update(StoreTenant).where(StoreTenant.id == tid)
                     .values(next_component=StoreTenant.next_component + count)
                     .returning(StoreTenant.next_component)).scalar_one()
    return last - count


# -- batches and files -------------------------------------------------------------------------------------

def forget_batch(s: Session, batch_id: str) -> list[int]:
    """Remove a batch from the index (its records, files and row); the components its records were in."""
    file_ids = list(s.scalars(select(StoreFile.id).where(StoreFile.batch_id == batch_id)))
    comps: set[int] = set()
    for fid in file_ids:
        comps.update(s.scalars(select(StoreRecord.component).where(StoreRecord.file_id == fid).distinct()))
        s.execute(delete(StoreRecord).where(StoreRecord.file_id == fid))
    s.execute(delete(StoreFile).where(StoreFile.batch_id == batch_id))
    s.execute(delete(StoreBatch).where(StoreBatch.batch_id == batch_id))
    return sorted(comps)


def add_batch(s: Session, tid: int, batch_id: str, dataset_id: str, records: int) -> None:
    s.execute(insert(StoreBatch).values(batch_id=batch_id, tenant_id=tid, dataset_id=dataset_id, records=records,
                                        indexed=0, done=False))


def batch_progress(s: Session, batch_id: str) -> tuple[int, bool] | None:
    """(records indexed, done) of a batch the store has begun indexing, or None."""
    row = s.execute(select(StoreBatch.indexed, StoreBatch.done).where(StoreBatch.batch_id == batch_id)).first()
    return None if row is None else (int(row[0]), bool(row[1]))


def set_progress(s: Session, batch_id: str, indexed: int, done: bool) -> None:
    s.execute(update(StoreBatch).where(StoreBatch.batch_id == batch_id).values(indexed=indexed, done=done))


def batch_files(s: Session, batch_id: str) -> list[int]:
    return list(s.scalars(select(StoreFile.id).where(StoreFile.batch_id == batch_id).order_by(StoreFile.id)))


def add_file(s: Session, tid: int, batch_id: str, dataset_id: str, kind: str, relpath: str) -> int:
    return s.execute(insert(StoreFile).values(tenant_id=tid, batch_id=batch_id, dataset_id=dataset_id, kind=kind,
                                              relpath=relpath).returning(StoreFile.id)).scalar_one()


def unindexed_batches(s: Session, t: Tenant) -> list[tuple[str, str, str, int]]:
    """(batch id, dataset id, kind, records) of the tenant's `success` ingestion batches of profile and event
    datasets that the store does not index yet (just ingested, or ingested before the store existed)."""
    rows = s.execute(
        select(Batch.id, Batch.dataset_id, Dataset.kind, Batch.records_written)
        .join(Dataset, Dataset.id == Batch.dataset_id)
        .outerjoin(StoreBatch, StoreBatch.batch_id == Batch.id)
        .where(Batch.org == t.org, Batch.sandbox == t.sandbox, Batch.status == "success",
               Batch.origin == "ingestion", Dataset.kind.in_(("profile", "event")),
               StoreBatch.batch_id.is_(None) | StoreBatch.done.is_(False))
        .order_by(Batch.created_ms, Batch.id)
    )
    return [(r[0], r[1], r[2], int(r[3] or 0)) for r in rows]


def gone_batches(s: Session, tid: int) -> list[str]:
    """Indexed batches that are gone (deleted, or their dataset deleted) or failed after all."""
    rows = s.execute(select(StoreBatch.batch_id).outerjoin(Batch, Batch.id == StoreBatch.batch_id)
                     .where(StoreBatch.tenant_id == tid,
                            Batch.id.is_(None) | Batch.status.not_in(("success", "processing"))))
    return [r[0] for r in rows]


# -- the identity graph ----------------------------------------------------------------------------------

def probe_components(s: Session, tid: int, keys: Sequence[tuple[str, str]]) -> dict[int, int]:
    """{position in `keys`: component} for the (namespace, id) pairs the graph has; a join against a temp
    table of the keys, so a large batch costs one statement per chunk rather than one per identity."""
    if not keys or not s.scalar(select(func.count()).select_from(
            select(StoreIdentity.tenant_id).where(StoreIdentity.tenant_id == tid).limit(1).subquery())):
        return {}
    conn = s.connection()
    sqlite = is_sqlite(conn.engine)
    conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS store_probe (namespace TEXT, identity TEXT, "
                         "node BIGINT)" + ("" if sqlite else " ON COMMIT DELETE ROWS"))
    join = ("SELECT p.node, i.component FROM store_probe p JOIN store_identities i ON i.tenant_id = {t} "
            "AND i.namespace = p.namespace AND i.identity = p.identity").format(t="?" if sqlite else "%s")
    out: dict[int, int] = {}
    cur = conn.connection.driver_connection.cursor()  # the driver's own rows: no per-row SQLAlchemy objects
    try:
        for lo in range(0, len(keys), PROBE_CHUNK):
            cur.execute("DELETE FROM store_probe")
            bulk_insert(s, "store_probe", ("namespace", "identity", "node"),
                        ((ns, ident, lo + i) for i, (ns, ident) in enumerate(keys[lo:lo + PROBE_CHUNK])))
            cur.execute(join, (tid,))
            out.update(cur.fetchall())
        cur.execute("DELETE FROM store_probe")
    finally:
        cur.close()
    return out


def rename_components(s: Session, tid: int, moves: Sequence[tuple[int, int]]) -> None:
    """Move every identity and record of component `old` into `new`, for each (old, new)."""
    if not moves:
        return
    params = [{"t": tid, "old": old, "new": new} for old, new in moves]
    for table in ("store_identities", "store_records"):
        s.execute(text(f"UPDATE {table} SET component = :new WHERE tenant_id = :t AND component = :old"), params)


def add_identities(s: Session, tid: int, rows: Iterable[tuple[str, str, int]]) -> None:
    bulk_insert(s, "store_identities", ("tenant_id", "namespace", "identity", "component"),
                ((tid, ns, ident, comp) for ns, ident, comp in rows))


def add_records(s: Session, tid: int, rows: Iterable[tuple[int, int, int]]) -> None:
    """(file id, row, component) rows."""
    bulk_insert(s, "store_records", ("file_id", "row", "tenant_id", "component"),
                ((fid, row, tid, comp) for fid, row, comp in rows))


def component_of(s: Session, tid: int, namespace: str, identity: str) -> int | None:
    return s.scalar(select(StoreIdentity.component).where(
        StoreIdentity.tenant_id == tid, StoreIdentity.namespace == namespace, StoreIdentity.identity == identity))


def components_of(s: Session, tid: int, keys: Sequence[tuple[str, str]]) -> list[int]:
    """The components of a few (namespace, id) pairs (a lookup's)."""
    return list(components_by_key(s, tid, keys).values())


def components_by_key(s: Session, tid: int, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """{(namespace, id): component} for the pairs the graph has: per namespace, an IN on the primary key
    (SQLite plans a row-value IN over the whole key as a scan)."""
    by_ns: dict[str, list[str]] = {}
    for ns, ident in keys:
        by_ns.setdefault(ns, []).append(ident)
    out: dict[tuple[str, str], int] = {}
    for ns, ids in by_ns.items():
        for lo in range(0, len(ids), 500):
            out.update(((ns, r[0]), r[1]) for r in s.execute(
                select(StoreIdentity.identity, StoreIdentity.component).where(
                    StoreIdentity.tenant_id == tid, StoreIdentity.namespace == ns,
                    StoreIdentity.identity.in_(ids[lo:lo + 500]))))
    return out


def _chunks(values: Sequence[int]) -> list[list[int]]:
    """Components in lists of IN_CHUNK: a delete can touch more components than a statement may bind (32,766
    parameters on SQLite)."""
    values = list(values)
    return [values[lo:lo + IN_CHUNK] for lo in range(0, len(values), IN_CHUNK)]


def component_identities(s: Session, tid: int, comps: Sequence[int]) -> list[tuple[str, str, int]]:
    return [(r[0], r[1], r[2]) for chunk in _chunks(comps) for r in s.execute(
        select(StoreIdentity.namespace, StoreIdentity.identity, StoreIdentity.component)
        .where(StoreIdentity.tenant_id == tid, StoreIdentity.component.in_(chunk)))]


def drop_components(s: Session, tid: int, comps: Sequence[int]) -> None:
    for chunk in _chunks(comps):
        for table in (StoreIdentity, StoreRecord):
            s.execute(delete(table).where(table.tenant_id == tid, table.component.in_(chunk)))


def component_records(s: Session, tid: int, comps: Sequence[int], *, live_only: bool = True
                      ) -> list[tuple[int, str, str, str, str, int]]:
    """(file id, relpath, dataset id, batch id, kind, row) of every record of the components, by file and
    row; `live_only`: of `success` batches only (a batch being indexed, or deleted, is not read)."""
    out = []
    for chunk in _chunks(comps):
        q = (select(StoreFile.id, StoreFile.relpath, StoreFile.dataset_id, StoreFile.batch_id, StoreFile.kind,
                    StoreRecord.row)
             .join(StoreFile, StoreFile.id == StoreRecord.file_id)
             .where(StoreRecord.tenant_id == tid, StoreRecord.component.in_(chunk)))
        if live_only:
            q = q.join(Batch, Batch.id == StoreFile.batch_id).where(Batch.status == "success")
        out.extend((r[0], r[1], r[2], r[3], r[4], r[5]) for r in s.execute(q))
    return sorted(out, key=lambda r: (r[0], r[5]))


def record_components(s: Session, tid: int) -> list[tuple[str, bool, str, str]]:
    """(relpath, batch indexed whole, rows, components) per indexed file of the tenant: every record's
    component, rows and components as comma-separated texts that the two aggregates build in the same row
    order. Texts, because the database joins them in C: ~0.4 s per million records on SQLite, where Python
    rows took ~3x that. One statement per file, so each scans its primary-key range; a caller that needs one
    state of the store across them compares `version` before and after."""
    concat = func.group_concat if is_sqlite(s.get_bind()) else (lambda col: func.string_agg(col, ","))
    files = s.execute(select(StoreFile.id, StoreFile.relpath, StoreBatch.done)
                      .join(StoreBatch, StoreBatch.batch_id == StoreFile.batch_id)
                      .where(StoreFile.tenant_id == tid).order_by(StoreFile.id)).all()
    q = select(concat(cast(StoreRecord.row, String)), concat(cast(StoreRecord.component, String)))
    out = []
    for fid, relpath, done in files:
        rows, comps = s.execute(q.where(StoreRecord.file_id == fid)).one()
        out.append((relpath, bool(done), rows or "", comps or ""))
    return out
