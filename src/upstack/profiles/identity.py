"""Identity nodes, primary identities, upsert and the pdg connected components, all in numpy/scipy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from scipy.sparse import csgraph

from .load import IdentityRows, Records


@dataclass
class Nodes:
    """Every distinct identity, numbered in (namespace, id) text order.

    Numbering in text order makes "the smallest node of a component" the smallest identity, which is
    how profiles get an anchor that does not depend on file or record order.
    """

    namespaces: list[str]  # sorted
    ns: np.ndarray  # int32 namespace code per node
    id: pa.Array  # string id per node
    starts: np.ndarray  # first node of each namespace (len(namespaces) + 1 entries)

    @property
    def count(self) -> int:
        return len(self.ns)

    def find(self, namespace: str, ident: str) -> int:
        """Node number of one identity, -1 if unknown."""
        if namespace not in self.namespaces:
            return -1
        g = self.namespaces.index(namespace)
        lo, hi = int(self.starts[g]), int(self.starts[g + 1])
        hit = pc.index_in(pa.array([ident], pa.string()), value_set=self.id.slice(lo, hi - lo))[0].as_py()
        return -1 if hit is None else lo + hit


def encode_nodes(*sides: Records) -> tuple[Nodes, list[np.ndarray]]:
    """Number identities per namespace (cheaper than one global unique over strings), and return the node
    of every identity row of every side."""
    names = sorted({ns for r in sides for ns in r.namespaces})
    to_global = [np.asarray([names.index(ns) for ns in r.namespaces] or [0], dtype=np.int32) for r in sides]
    row_ns = [
        to_global[i][r.identities.ns] if len(r.identities.ns) else r.identities.ns
        for i, r in enumerate(sides)
    ]
    row_nodes = [np.full(len(r.identities.ns), -1, dtype=np.int64) for r in sides]
    node_ids: list[pa.Array] = []
    starts = [0]
    for g in range(len(names)):
        picks = [np.flatnonzero(ns == g) for ns in row_ns]
        ids = pa.concat_arrays([r.identities.id.take(pa.array(p)) for r, p in zip(sides, picks, strict=True)])
        uniq = pc.unique(ids)
        uniq = uniq.take(pc.sort_indices(uniq))
        for side, p in enumerate(picks):
            local = pc.index_in(sides[side].identities.id.take(pa.array(p)), value_set=uniq)
            row_nodes[side][p] = starts[-1] + np.asarray(local.to_numpy(zero_copy_only=False), dtype=np.int64)
        node_ids.append(uniq)
        starts.append(starts[-1] + len(uniq))
    starts_np = np.asarray(starts, dtype=np.int64)
    nodes = Nodes(
        namespaces=names,
        ns=np.repeat(np.arange(len(names), dtype=np.int32), np.diff(starts_np)),
        id=pa.concat_arrays(node_ids) if node_ids else pa.array([], pa.string()),
        starts=starts_np,
    )
    return nodes, row_nodes


def primary_nodes(ids: IdentityRows, row_nodes: np.ndarray, n_records: int) -> np.ndarray:
    """Per record, the node of its primary identity: the first item flagged primary, else the first
    item (namespace field order, then list order); -1 for a record without identities."""
    out = np.full(n_records, -1, dtype=np.int64)
    if len(row_nodes) == 0:
        return out
    order = np.lexsort((ids.pos, ~ids.primary, ids.record))
    rec_sorted = ids.record[order]
    first = np.flatnonzero(np.r_[True, rec_sorted[1:] != rec_sorted[:-1]])
    out[rec_sorted[first]] = row_nodes[order[first]]
    return out


def upsert_survivors(records: Records, primary: np.ndarray) -> np.ndarray:
    """Boolean mask of the records that survive upsert: per (dataset, primary identity) only the latest
    record by (ingestTime, commitBatchId, rowNumber) is kept; records without identity are dropped."""
    keep = np.zeros(records.n, dtype=bool)
    if records.n == 0:
        return keep
    order = np.lexsort(
        (records.file, records.row, records.batch, records.ingest_ms, primary, records.dataset)
    )
    ds, pk = records.dataset[order], primary[order]
    last = np.r_[(ds[1:] != ds[:-1]) | (pk[1:] != pk[:-1]), True]
    keep[order[last]] = True
    return keep & (primary >= 0)


def component_anchors(
    n_nodes: int, edges: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """pdg stitching: connected components of the identity graph (identities of one record are linked).

    Returns, per node, the anchor of its component (its smallest node) and the component's identity count.
    """
    if n_nodes == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a = np.concatenate([e[0] for e in edges]) if edges else np.zeros(0, dtype=np.int64)
    b = np.concatenate([e[1] for e in edges]) if edges else np.zeros(0, dtype=np.int64)
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n_nodes, n_nodes)).tocsr()
    _, labels = csgraph.connected_components(graph, directed=False)
    # Nodes are numbered in identity order, so the first node seen with a label is the component's smallest.
    _, first = np.unique(labels, return_index=True)
    anchor_of_label = np.empty(len(first), dtype=np.int64)
    anchor_of_label[labels[first]] = first
    size_of_label = np.bincount(labels)
    return anchor_of_label[labels], size_of_label[labels]


def record_edges(ids: IdentityRows, row_nodes: np.ndarray, primary: np.ndarray, mask: np.ndarray | None):
    """Edges linking every identity of a record to the record's primary identity (a star per record)."""
    src = primary[ids.record]
    ok = src >= 0
    if mask is not None:
        ok &= mask[ids.record]
    return row_nodes[ok], src[ok]
