"""Identity nodes, primary identities, upsert and the pdg connected components, all in numpy/scipy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from scipy.sparse import csgraph

from .load import IdentityRows, Records, index_arrays
from .park import parked
from .sorting import index_dtype, lexsort
from .textsort import NodeTexts, TextSpill, number_in_text_order
from .unify import shared_cursor


@dataclass
class Nodes:
    """Every distinct identity, numbered in (namespace, id) text order.

    Numbering in text order makes "the smallest node of a component" the smallest identity, which is
    how profiles get an anchor that does not depend on file or record order.
    """

    namespaces: list[str]  # sorted
    ns: np.ndarray  # namespace code per node
    id: pa.Array | None  # string id per node; None when numbered by the external sort (see text_path)
    starts: np.ndarray  # first node of each namespace (len(namespaces) + 1 entries)
    # Numbered by the external sort (textsort.py): the file of the ids in node order, and the node of the
    # identity a lookup asked for.
    text_path: str | None = None
    found: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.ns)

    def texts(self) -> NodeTexts:
        if self.id is None:
            raise AssertionError("identities numbered by the external sort have their texts routed per part")
        return NodeTexts(self.id)

    def find(self, namespace: str, ident: str) -> int:
        """Node number of one identity, -1 if unknown."""
        if namespace not in self.namespaces:
            return -1
        g = self.namespaces.index(namespace)
        lo, hi = int(self.starts[g]), int(self.starts[g + 1])
        if self.id is None:
            if (namespace, ident) not in self.found:
                raise AssertionError("the external sort was not told which identity to look up")
            return self.found[(namespace, ident)]
        hit = pc.index_in(pa.array([ident], pa.string()), value_set=self.id.slice(lo, hi - lo))[0].as_py()
        return -1 if hit is None else lo + hit


def _sort_order(ids: pa.Array) -> pa.Array:
    """Indices that sort `ids` in byte order. DuckDB's sort (normalised key prefixes, two threads) is 2-4x
    faster here than Arrow's sort_indices on strings; equal strings may come in any order."""
    con = shared_cursor()
    try:
        con.register("ids", pa.table({"i": np.arange(len(ids), dtype=np.int64), "v": ids}))
        return con.sql("SELECT i FROM ids ORDER BY v").to_arrow_table().column(0).combine_chunks()
    finally:
        con.close()


def _ns_codes(starts: list[int]) -> np.ndarray:
    starts_np = np.asarray(starts, dtype=np.int64)
    return np.repeat(np.arange(len(starts) - 1, dtype=np.int16 if len(starts) < 2**15 else np.int32), np.diff(starts_np))


def _take_namespace(sides: Sequence[Records], name: str) -> tuple[list, list[tuple[int, np.ndarray]]]:
    """The ids of one namespace from every side and where their identity rows are; the
    sides let go of them."""
    chunks, rows = [], []
    for side, r in enumerate(sides):
        if name in r.namespaces:
            g = r.namespaces.index(name)
            chunks += r.ns_ids[g]
            rows += [(side, x) for x in r.ns_rows[g]]
            r.ns_ids[g], r.ns_rows[g] = [], []
    return chunks, rows


def _scatter(sides: Sequence[Records], rows: list[tuple[int, np.ndarray]], node: np.ndarray) -> None:
    at = 0
    for side, x in rows:
        sides[side].identities.node[x] = node[at : at + len(x)]
        at += len(x)


def encode_spilled(spill: TextSpill, memory_limit: str, *sides: Records, lookup: tuple[str, str] | None) -> Nodes:
    """encode_nodes for sides read with a TextSpill: DuckDB sorts the spilled occurrences by (namespace,
    id) within memory_limit (textsort.py). Same node numbers as encode_nodes; `lookup` is the one
    identity Nodes.find will be asked for."""
    names = sorted({ns for r in sides for ns in r.namespaces})
    # Only the identity rows' nodes are written here: the rest of pass 1 waits on disk.
    with parked(spill.directory, [a for r in sides for a in index_arrays(r, identities=("record", "auth"))]):
        starts, text_path, found = number_in_text_order(
            spill, names, [r.identities.node for r in sides], memory_limit, lookup
        )
    for r in sides:
        if len(r.identities.node) and r.identities.node.min() < 0:
            raise AssertionError("an identity row was not numbered")
    return Nodes(
        namespaces=names,
        ns=_ns_codes(list(starts)),
        id=None,
        starts=starts,
        text_path=text_path,
        found={lookup: found} if lookup is not None else {},
    )


def encode_nodes(*sides: Records) -> Nodes:
    """Number identities per namespace in text order and write the node of every identity row of every side
    into its `identities.node`. A sort per namespace, then one comparison of neighbours: cheaper than
    hashing strings (dictionary_encode) or one global unique over (namespace, id) pairs."""
    names = sorted({ns for r in sides for ns in r.namespaces})
    node_ids: list[pa.Array] = []
    starts = [0]
    for name in names:
        chunks, rows = _take_namespace(sides, name)
        ids = pa.concat_arrays(chunks) if len(chunks) != 1 else chunks[0]
        del chunks
        order = _sort_order(ids)
        ids = ids.take(order)
        m = len(ids)
        new = np.ones(m, dtype=bool)
        if m > 1:
            new[1:] = np.asarray(pc.not_equal(ids.slice(1), ids.slice(0, m - 1)).to_numpy(zero_copy_only=False))
        rank = np.cumsum(new, dtype=np.int64) - 1
        node = np.empty(m, dtype=np.int64)
        node[np.asarray(order.to_numpy(zero_copy_only=False))] = starts[-1] + rank
        del order, rank
        uniq = ids.filter(pa.array(new))
        del ids, new
        _scatter(sides, rows, node)
        node_ids.append(uniq)
        starts.append(starts[-1] + len(uniq))
    return Nodes(
        namespaces=names,
        ns=_ns_codes(starts),
        id=(pa.concat_arrays(node_ids) if len(node_ids) != 1 else node_ids[0]) if node_ids else pa.array([], pa.string()),
        starts=np.asarray(starts, dtype=np.int64),
    )


def primary_nodes(records: Records) -> np.ndarray:
    """Per record, the node of its primary identity (see load._IndexBuilder._identities), -1 if none."""
    occ = records.primary_occ
    out = np.full(records.n, -1, dtype=records.identities.node.dtype)
    ok = occ >= 0
    out[ok] = records.identities.node[occ[ok]]
    return out


def upsert_survivors(records: Records, primary: np.ndarray) -> np.ndarray:
    """Boolean mask of the records that survive upsert: per (dataset, primary identity) only the latest
    record by (ingestTime, commitBatchId, rowNumber) is kept; records without identity are dropped."""
    keep = np.zeros(records.n, dtype=bool)
    if records.n == 0:
        return keep
    order = lexsort((records.order, primary, records.dataset))
    ds, pk = records.dataset[order], primary[order]
    last = np.r_[(ds[1:] != ds[:-1]) | (pk[1:] != pk[:-1]), True]
    keep[order[last]] = True
    return keep & (primary >= 0)


def component_anchors(n_nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """pdg stitching on one machine: per node, the anchor (smallest node) of its connected component in the
    identity graph, with scipy."""
    if n_nodes == 0:
        return np.zeros(0, dtype=np.int64)
    graph = sparse.csr_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n_nodes, n_nodes))
    n_labels, labels = csgraph.connected_components(graph, directed=False)
    # Nodes are numbered in identity order: write node numbers in reverse so each label keeps its smallest.
    nodes = np.arange(n_nodes, dtype=index_dtype(n_nodes))
    anchor_of_label = np.empty(n_labels, dtype=nodes.dtype)
    anchor_of_label[labels[::-1]] = nodes[::-1]
    return anchor_of_label[labels]


def component_sizes(anchor_of_node: np.ndarray) -> np.ndarray:
    """Per node, the number of identities in its component."""
    return np.bincount(anchor_of_node, minlength=len(anchor_of_node)).astype(anchor_of_node.dtype)[anchor_of_node]


def record_edges(ids: IdentityRows, primary: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Edges linking every identity of a record to the record's primary identity (a star per record),
    without the primary's own loop."""
    src = primary[ids.record]
    ok = (src >= 0) & (src != ids.node)
    if mask is not None:
        ok &= mask[ids.record]
    return ids.node[ok], src[ok]
