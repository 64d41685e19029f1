"""The profile store: an identity graph and a fragment index per tenant, kept current by ingestion.

AEP keeps a Profile store that ingestion updates and merges at read time; this is upstack's. Two tables hold
it (storage/store_repo.py): `store_identities` maps every identity to its *component* (the connected
identities of every profile and event record of the tenant, whatever the merge policy) and `store_records`
says where each component's records are (lake file, row). A lookup reads its identity's component and merges
exactly those records with the engine (`DatasetInput.rows`), so it costs the component, not the lake, and
is by construction the row a merge of the whole lake gives for that profile (profiles/components.py says
why a component is enough under every policy).

- **Indexing** runs in the background `store` job (worker/store.py), queued by the transaction that makes a
  batch `success`: `read_batch` reads the batch's identityMap columns, then `BatchIndex` is a union-find
  over the batch's edges (profiles/components.union), PART_RECORDS records per transaction: it probes the batch's identities,
  merges the components they join by renaming the larger numbers into the smallest, and adds the new
  identities and records. Its cost follows the batch and the components it touches. The ingest's own time
  does not include it, and the job yields to user work (jobs/lanes.py).
- **Read your writes**: until the job has run, a lookup scans the `success` batches the index lacks for
  records that connect to its identity (`lookup_inputs`, at most DELTA_RECORDS of them), so a lookup of an
  identity of a `success` batch reflects it from the moment the batch is `success`.
- **Deleting** a batch or a dataset removes its records from the index and rebuilds the components they
  were in from the records left (a split), in the same background job (`forget_gone`). Lookups never need
  to wait for it: they only read records of batches that are `success` now.
- **Upserts** are the engine's: a record replaced by a later one of the same dataset and primary identity is
  still indexed (the merge drops it), so a component can be larger than the graph of the surviving records;
  the answer is the same, the lookup reads a few more rows. A rebuild makes it exact again.
- A tenant whose data predates the store (a lake from an older version) has `success` batches the store does
  not index: the first lookup queues the `store` job, which indexes them batch by batch; lookups scan them
  meanwhile, or merge the whole lake when they hold more than DELTA_RECORDS records.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from upstack.jobs import queue
from upstack.lake import Lake
from upstack.profiles import DatasetInput
from upstack.profiles.components import (
    Occurrences,
    file_occurrences,
    files_occurrences,
    number_nodes,
    store_key,
    union,
)
from upstack.profiles.load import footer
from upstack.storage import store_repo
from upstack.tenant import Tenant

log = logging.getLogger("upstack.store")

KIND = "store"  # the background job that brings a tenant's store in line with the catalog
KINDS = ("profile", "event")  # dataset kinds the store indexes (profile-enabled or not: enabling one later works)


@dataclass
class BatchRecords:
    """A batch's published files and their identity occurrences, read before the indexing transaction."""

    batch_id: str
    dataset_id: str
    kind: str
    files: list[tuple[str, int]]  # (path relative to the data directory, rows)
    occurrences: Occurrences

    @property
    def records(self) -> int:
        return sum(n for _, n in self.files)


def read_batch(lake: Lake, t: Tenant, dataset_id: str, batch_id: str, kind: str) -> BatchRecords:
    """The identities of every record of a published batch (identityMap columns only)."""
    files, parts, base = [], [], 0
    for f in sorted(lake.published_files(t.org, t.sandbox, dataset_id, batch_id), key=lambda f: (f.file_id, f.name)):
        if not f.name.endswith(".parquet"):
            continue
        n, occ = file_occurrences(str(f.path), base=base)
        files.append((str(f.path.relative_to(lake.root)), n))
        parts.append(occ)
        base += n
    return BatchRecords(batch_id, dataset_id, kind, files, Occurrences.concat(parts))


PART_RECORDS = 50_000  # records indexed per transaction (~0.5 s on SQLite, the writer lock's hold time)


class BatchIndex:
    """Indexing one batch into its tenant's store, part by part, each part in a transaction of its own, so
    that on SQLite no transaction holds the writer lock for long and a background job can give way between
    parts. Progress is committed with each part: a run that gave way resumes after the last part done (a
    batch indexed by an older run is started over only when its files changed). The batch counts as indexed
    (`store_batches.done`) after its last part; until then lookups scan it (a record found both ways is read
    once). Each part is a union-find step of its own against the graph as it is then."""

    def __init__(self, t: Tenant, batch: BatchRecords, part_records: int | None = None):
        self.t, self.batch, self.step = t, batch, part_records or PART_RECORDS
        self.tid, self.start = 0, 0
        self.rec_file = self.rec_row = np.zeros(0, np.int64)

    def begin(self, s: Session) -> None:
        b = self.batch
        self.tid = store_repo.ensure_tenant(s, self.t)
        store_repo.lock_tenant(s, self.tid)
        progress = store_repo.batch_progress(s, b.batch_id)
        file_ids = store_repo.batch_files(s, b.batch_id) if progress is not None else []
        if progress is None or len(file_ids) != len(b.files):
            store_repo.forget_batch(s, b.batch_id)
            file_ids = [store_repo.add_file(s, self.tid, b.batch_id, b.dataset_id, b.kind, rel) for rel, _ in b.files]
            store_repo.add_batch(s, self.tid, b.batch_id, b.dataset_id, b.records)
            progress = (0, False)
        self.start = progress[0]
        counts = np.array([n for _, n in b.files], dtype=np.int64)
        self.rec_file = np.repeat(np.array(file_ids, dtype=np.int64), counts)
        self.rec_row = (np.concatenate([np.arange(n, dtype=np.int64) for n in counts]) if len(counts)
                        else np.zeros(0, np.int64))

    def parts(self) -> list[tuple[int, int]]:
        """The parts left: [lo, hi) record ranges from where an earlier run stopped."""
        n = self.batch.records
        return [(lo, min(lo + self.step, n)) for lo in range(self.start, n, self.step)]

    def add_part(self, s: Session, lo: int, hi: int) -> None:
        store_repo.lock_tenant(s, self.tid)
        occ = self.batch.occurrences
        a, b = np.searchsorted(occ.record, [lo, hi])  # occurrences come in record order
        part = Occurrences(occ.record[a:b] - lo, occ.namespace.slice(a, b - a), occ.ids.slice(a, b - a))
        _add_records(s, self.tid, self.rec_file[lo:hi], self.rec_row[lo:hi], part)
        store_repo.set_progress(s, self.batch.batch_id, hi, hi >= self.batch.records)

    def finish(self, s: Session) -> None:
        """Mark a batch without records (or already complete) done."""
        store_repo.set_progress(s, self.batch.batch_id, self.batch.records, True)


def _add_records(s: Session, tid: int, rec_file: np.ndarray, rec_row: np.ndarray, occ: Occurrences) -> None:
    """Union the records' identities into the graph and index the records under their components."""
    nodes = number_nodes(occ)
    existing = store_repo.probe_components(s, tid, nodes.keys)
    update = union(len(rec_file), occ, nodes, existing, store_repo.next_component(s, tid))
    store_repo.allocate_components(s, tid, update.new_components)
    store_repo.rename_components(s, tid, update.moves)
    comp = update.node_component
    store_repo.add_identities(s, tid, ((*nodes.keys[i], int(comp[i])) for i in update.new_nodes.tolist()))
    has = update.record_component >= 0
    store_repo.add_records(s, tid, zip(rec_file[has].tolist(), rec_row[has].tolist(),
                                       update.record_component[has].tolist(), strict=True))


def _rebuild(s: Session, lake: Lake, tid: int, comps: list[int]) -> None:
    """Recompute components from the records they still have (after records were removed): an exact split."""
    if not comps:
        return
    rows = store_repo.component_records(s, tid, comps, live_only=False)
    by_file: dict[int, tuple[str, list[int]]] = {}
    for fid, rel, _, _, _, row in rows:
        by_file.setdefault(fid, (rel, []))[1].append(row)
    rec_file, rec_row, parts, base = [], [], [], 0
    for fid, (rel, file_rows) in by_file.items():
        picked = np.array(file_rows, dtype=np.int64)
        n, occ = file_occurrences(str(lake.root / rel), picked, base=base)
        rec_file.append(np.full(n, fid, dtype=np.int64))
        rec_row.append(picked)
        parts.append(occ)
        base += n
    store_repo.drop_components(s, tid, comps)
    if parts:
        _add_records(s, tid, np.concatenate(rec_file), np.concatenate(rec_row), Occurrences.concat(parts))


# -- the background job ----------------------------------------------------------------------------------

def request_sync(s: Session, t: Tenant) -> bool:
    """Queue the tenant's `store` job unless one is queued and not started (debounce)."""
    return queue.enqueue_once(s, KIND, "store", t.org, t.sandbox, delay_ms=0) is not None


def forget_gone(s: Session, lake: Lake, t: Tenant) -> int:
    """Remove deleted (or failed) batches from the index and split the components they were in."""
    tid = store_repo.tenant_id(s, t)
    if tid is None:
        return 0
    store_repo.lock_tenant(s, tid)
    gone = store_repo.gone_batches(s, tid)
    comps: set[int] = set()
    for batch_id in gone:
        comps.update(store_repo.forget_batch(s, batch_id))
    _rebuild(s, lake, tid, sorted(comps))
    return len(gone)


def unindexed(s: Session, t: Tenant) -> list[tuple[str, str, str, int]]:
    return store_repo.unindexed_batches(s, t)


def is_unindexed(s: Session, t: Tenant, batch_id: str) -> bool:
    return any(b[0] == batch_id for b in store_repo.unindexed_batches(s, t))


# -- lookups ---------------------------------------------------------------------------------------------

@dataclass
class Unindexed:
    """The `success` batches the index lacks (or lacks in part), read once for the lookups of one request:
    (path, dataset id, identity occurrences) per file; `too_many` past DELTA_RECORDS records."""

    files: list[tuple[str, str, Occurrences]]
    too_many: bool = False


def unindexed_files(s: Session, lake: Lake, t: Tenant) -> Unindexed:
    pending = store_repo.unindexed_batches(s, t)
    if sum(n for *_, n in pending) > DELTA_RECORDS:
        request_sync(s, t)
        return Unindexed([], too_many=True)
    return Unindexed([(str(f.path), dataset_id, file_occurrences(str(f.path))[1])
                      for batch_id, dataset_id, _, _ in pending
                      for f in lake.published_files(t.org, t.sandbox, dataset_id, batch_id)
                      if f.name.endswith(".parquet")])


def lookup_inputs(s: Session, lake: Lake, t: Tenant, inputs: list[DatasetInput], identity: tuple[str, str],
                  unindexed: Unindexed | None = None) -> list[DatasetInput] | None:
    """The records a lookup of `identity` merges, as row selections of the datasets of `inputs` (the
    profile-enabled ones): its component's records from the index, plus the records of `success` batches the
    index does not have yet that connect to it (scanned, so a lookup reads its writes while the background
    job indexes them; `unindexed` when the caller read them already for another lookup). None when more than
    DELTA_RECORDS records wait to be indexed (a lake from before the store): the caller merges `inputs` whole
    meanwhile."""
    started = time.perf_counter()
    unindexed = unindexed if unindexed is not None else unindexed_files(s, lake, t)
    if unindexed.too_many:
        return None
    delta = [_DeltaFile(path, dataset_id, occ) for path, dataset_id, occ in unindexed.files]
    tid = store_repo.tenant_id(s, t)
    comps: set[int] = set()
    key = (store_key(identity[0]), store_key(identity[1]))
    known, frontier = {key}, {key}
    while frontier:
        found: set[tuple[str, str]] = set()
        if tid is not None:
            new = set(store_repo.components_of(s, tid, sorted(frontier))) - comps
            comps |= new
            found.update((ns, ident) for ns, ident, _ in store_repo.component_identities(s, tid, sorted(new)))
        for d in delta:
            found |= d.connect(frontier | found)
        frontier = found - known
        known |= frontier
    kinds = {d.dataset_id: d.kind for d in inputs}
    picked: dict[str, dict[str, set[int]]] = {}
    for _, rel, dataset_id, _, _, row in (store_repo.component_records(s, tid, sorted(comps)) if comps else ()):
        if dataset_id in kinds:
            picked.setdefault(dataset_id, {}).setdefault(str(lake.root / rel), set()).add(row)
    for d in delta:
        if d.dataset_id in kinds and d.picked:
            picked.setdefault(d.dataset_id, {}).setdefault(d.path, set()).update(d.picked)
    out = [DatasetInput(ds, kinds[ds], tuple(files), tuple(tuple(sorted(r)) for r in files.values()))
           for ds, files in sorted(picked.items())]
    log.debug("store lookup planned", extra={
        "components": len(comps), "records": sum(len(r) for d in out for r in d.rows or ()),
        "unindexed_files": len(delta), "duration_ms": round((time.perf_counter() - started) * 1000, 3)})
    return out


# Records of not-yet-indexed batches a lookup scans rather than merging the whole lake: a batch just ingested
# is indexed within seconds, a lake from before the store may hold millions of records (the sync indexes them).
DELTA_RECORDS = 1_000_000


class _DeltaFile:
    """A published file the index does not have yet: the rows whose identities connect to a lookup's."""

    def __init__(self, path: str, dataset_id: str, occ: Occurrences):
        self.path, self.dataset_id, self.occ = path, dataset_id, occ
        self.picked: set[int] = set()

    def connect(self, identities: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Pick the rows holding any of `identities`; return every identity of the rows picked so far."""
        occ = self.occ
        if not len(occ.record) or not identities:
            return set()
        hit = np.zeros(len(occ.record), dtype=bool)
        by_ns: dict[str, list[str]] = {}
        for ns, ident in identities:
            by_ns.setdefault(ns, []).append(ident)
        for ns, ids in by_ns.items():
            mask = pc.and_(pc.equal(occ.namespace, ns), pc.is_in(occ.ids, value_set=pa.array(ids, pa.string())))
            hit |= np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
        self.picked.update(np.unique(occ.record[hit]).tolist())
        if not self.picked:
            return set()
        rows = np.isin(occ.record, np.fromiter(self.picked, dtype=np.int64))
        keep = pa.array(rows)
        return set(zip(occ.namespace.filter(keep).to_pylist(), occ.ids.filter(keep).to_pylist(), strict=True))


# -- exports ---------------------------------------------------------------------------------------------

# Records of not-yet-indexed batches an export joins to the stored components (by looking their identities up)
# rather than stitching the whole lake: a batch or two just ingested. More, and the store is catching up with a
# bulk load: the export stitches the whole lake meanwhile.
EXPORT_DELTA_RECORDS = 200_000
EXPORT_READ_TRIES = 3  # reads of the component map before giving up when the store keeps changing under it


def export_components(s: Session, lake: Lake, t: Tenant, inputs: list[DatasetInput]) -> dict[str, np.ndarray] | None:
    """The identity-graph component of every row of every file of `inputs` (path -> int64 per row, -1 for a
    record without identities), for an export merged group by group (profiles/grouped.py); None when the store
    cannot say: more than EXPORT_DELTA_RECORDS records not indexed yet, or the store changed under every read.
    The export then stitches the whole lake, as before the store.

    Files of batches the store indexes whole take their components from it, in one statement. The records of
    the others (a batch just ingested, or one being indexed) are united with the stored components their
    identities are in, in memory, as indexing them would (`components.union`), without writing anything. The
    store's version is the same before and after the reads, so they saw one state of it."""
    if sum(n for *_, n in store_repo.unindexed_batches(s, t)) > EXPORT_DELTA_RECORDS:
        return None
    tid = store_repo.tenant_id(s, t)
    for _ in range(EXPORT_READ_TRIES):
        before = store_repo.version(s, tid) if tid is not None else None
        found = _read_components(s, lake, tid, inputs)
        if found is not None and (tid is None or store_repo.version(s, tid) == before):
            return found
    return None


def _read_components(s: Session, lake: Lake, tid: int | None, inputs: list[DatasetInput]
                     ) -> dict[str, np.ndarray] | None:
    started = time.perf_counter()
    rows = store_repo.record_components(s, tid) if tid is not None else []
    stored = {str(lake.root / rel): (done, recs, comps) for rel, done, recs, comps in rows}
    out: dict[str, np.ndarray] = {}
    dirty: list[str] = []
    for path in (p for d in inputs for p in d.files):
        entry = stored.get(path)
        if entry is None or not entry[0]:
            dirty.append(path)
            continue
        comp = np.full(footer(path).num_rows, -1, dtype=np.int64)
        comp[_numbers(entry[1])] = _numbers(entry[2])
        out[path] = comp
    if dirty:
        sizes, occ = files_occurrences(dirty)
        base = sum(sizes)
        if base > EXPORT_DELTA_RECORDS:
            return None
        nodes = number_nodes(occ)
        known = store_repo.components_by_key(s, tid, nodes.keys) if tid is not None else {}
        existing = {i: known[k] for i, k in enumerate(nodes.keys) if k in known}
        first_new = store_repo.next_component(s, tid) if tid is not None else 1  # above every number read
        update = union(base, occ, nodes, existing, first_new)
        if update.moves:
            olds = np.array([m[0] for m in update.moves], dtype=np.int64)
            news = np.array([m[1] for m in update.moves], dtype=np.int64)
            order = np.argsort(olds)
            olds, news = olds[order], news[order]
            for comp in out.values():
                moved = np.isin(comp, olds)
                comp[moved] = news[np.searchsorted(olds, comp[moved])]
        cuts = np.cumsum([0, *sizes])
        for i, path in enumerate(dirty):
            out[path] = update.record_component[cuts[i]:cuts[i + 1]]
    log.debug("store export components read", extra={
        "files": len(out), "unindexed_files": len(dirty), "duration_ms": round((time.perf_counter() - started) * 1000, 3)})
    return out


def _numbers(text: str) -> np.ndarray:
    """A comma-separated list of integers (record_components' texts) as an array, parsed in C."""
    return np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, np.int64)
