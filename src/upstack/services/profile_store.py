"""The profile store: an identity graph and a fragment index per tenant, kept current by ingestion.

AEP keeps a Profile store that ingestion updates and merges at read time; this is upstack's. Two tables hold
it (storage/store_repo.py): `store_identities` maps every identity to its *component* (the connected
identities of every profile and event record of the tenant, whatever the merge policy) and `store_records`
says where each component's records are (lake file, row). A lookup reads its identity's component and merges
exactly those records with the engine (`DatasetInput.rows`), so it costs the component, not the lake, and
is by construction the row a merge of the whole lake gives for that profile (profiles/components.py says
why a component is enough under every policy).

- **Ingestion** indexes a batch in the transaction that makes it `success` (`read_batch` outside it, then
  `index_batch`): a lookup of an identity of a `success` batch reflects it (read your writes). The update is
  a union-find over the batch's edges (profiles/components.union): it probes the batch's identities, merges
  the components they join by renaming the smaller numbers, and adds the new identities and records. Its
  cost follows the batch and the components it touches.
- **Deleting** a batch or a dataset removes its records from the index and rebuilds the components they
  were in from the records left (a split), in the background `store` job (`sync`). Lookups never need to
  wait for it: they only read records of batches that are `success` now.
- **Upserts** are the engine's: a record replaced by a later one of the same dataset and primary identity is
  still indexed (the merge drops it), so a component can be larger than the graph of the surviving records;
  the answer is the same, the lookup reads a few more rows. A rebuild makes it exact again.
- A tenant whose data predates the store (a lake from an older version) has `success` batches the store does
  not index: lookups merge the whole lake meanwhile, and the first such lookup queues `sync`, which indexes
  them batch by batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from upstack.jobs import queue
from upstack.lake import Lake
from upstack.profiles import DatasetInput
from upstack.profiles.components import Occurrences, file_occurrences, number_nodes, union
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


def index_batch(s: Session, t: Tenant, batch: BatchRecords) -> None:
    """Add a batch to the tenant's store in the caller's transaction (the one that makes it `success`); an
    earlier attempt's rows for the same batch are replaced."""
    tid = store_repo.ensure_tenant(s, t)
    store_repo.lock_tenant(s, tid)
    store_repo.forget_batch(s, batch.batch_id)
    file_ids = [store_repo.add_file(s, tid, batch.batch_id, batch.dataset_id, batch.kind, rel)
                for rel, _ in batch.files]
    counts = np.array([n for _, n in batch.files], dtype=np.int64)
    rec_file = np.repeat(np.array(file_ids, dtype=np.int64), counts)
    rec_row = np.concatenate([np.arange(n, dtype=np.int64) for n in counts]) if len(counts) else np.zeros(0, np.int64)
    _add_records(s, tid, rec_file, rec_row, batch.occurrences)
    store_repo.add_batch(s, tid, batch.batch_id, batch.dataset_id, batch.records)


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


def unindexed(s: Session, t: Tenant) -> list[tuple[str, str, str]]:
    return store_repo.unindexed_batches(s, t)


def is_unindexed(s: Session, t: Tenant, batch_id: str) -> bool:
    return any(b == batch_id for b, _, _ in store_repo.unindexed_batches(s, t))


# -- lookups ---------------------------------------------------------------------------------------------

def lookup_inputs(s: Session, lake: Lake, t: Tenant, inputs: list[DatasetInput], identity: tuple[str, str]
                  ) -> list[DatasetInput] | None:
    """The records a lookup of `identity` merges: its component's records in the datasets of `inputs` (the
    profile-enabled ones), as row selections; None when the store does not index every `success` batch yet
    (the caller merges `inputs` whole, and a sync is queued)."""
    started = time.perf_counter()
    if store_repo.unindexed_batches(s, t):
        request_sync(s, t)
        return None
    tid = store_repo.tenant_id(s, t)
    comp = None if tid is None else store_repo.component_of(s, tid, *identity)
    if comp is None:
        return []
    kinds = {d.dataset_id: d.kind for d in inputs}
    picked: dict[str, dict[str, list[int]]] = {}
    for _, rel, dataset_id, _, _, row in store_repo.component_records(s, tid, [comp]):
        if dataset_id in kinds:
            picked.setdefault(dataset_id, {}).setdefault(str(lake.root / rel), []).append(row)
    out = [DatasetInput(ds, kinds[ds], tuple(files), tuple(tuple(r) for r in files.values()))
           for ds, files in sorted(picked.items())]
    log.debug("store lookup planned", extra={"component": comp, "records": sum(len(r) for d in out for r in d.rows),
                                             "duration_ms": round((time.perf_counter() - started) * 1000, 3)})
    return out
