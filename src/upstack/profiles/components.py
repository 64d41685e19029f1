"""The profile store's graph arithmetic (pure): identity occurrences of lake records, and how a set of new
records changes the components of a persisted identity graph (union-find over the new edges).

services/profile_store.py keeps the graph in the database; this module only computes. The graph links every
identity of a record to every other (a star per record, as stitch.py does under `pdg`), over all profile and
event records of a tenant whatever the merge policy. A component is a superset of the profile of any of its
identities under any policy (`none` profiles share their primary identity, `pdg` ones their component), so a
lookup that merges exactly a component's records answers what a merge of the whole lake answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from upstack import identitymap

from .load import IDENTITY_MAP, footer, read_rows


@dataclass
class Occurrences:
    """Identity occurrences of some records: occurrence k is identity (namespace[k], ids[k]) of record[k]."""

    record: np.ndarray  # int64, the record's index in the caller's list
    namespace: pa.Array  # string
    ids: pa.Array  # string

    @staticmethod
    def concat(parts: list[Occurrences]) -> Occurrences:
        if not parts:
            return Occurrences(np.zeros(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string()))
        return Occurrences(np.concatenate([p.record for p in parts]),
                           pa.concat_arrays([p.namespace for p in parts]), pa.concat_arrays([p.ids for p in parts]))


# The longest namespace or id (UTF-8 bytes) the graph keeps as it is. A longer one, or one holding NUL (which no
# PostgreSQL text can), is kept as a digest: PostgreSQL refuses index rows over ~2.7 KB, and the store's keys
# must be storable on both databases whatever a record held. Two texts with one digest would only join two
# components, which every answer tolerates (a component only has to contain the profile).
KEY_BYTES = 256


def _digest(text: str) -> str:
    return "#sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def store_key(text: str) -> str:
    """The text the graph stores for a namespace or an id."""
    return _digest(text) if "\x00" in text or len(text.encode("utf-8", "surrogatepass")) > KEY_BYTES else text


def store_keys(texts: pa.Array) -> pa.Array:
    """store_key of every text of a string array, column at a time (only the rare long ones in Python)."""
    odd = pc.or_(pc.greater(pc.binary_length(texts), KEY_BYTES), pc.match_substring(texts, "\x00"))
    if not pc.any(odd).as_py():
        return texts
    return pa.array([_digest(v) if bad else v for v, bad in zip(texts.to_pylist(), odd.to_pylist(), strict=True)],
                    pa.string())


def file_occurrences(path: str, rows: np.ndarray | None = None, base: int = 0) -> tuple[int, Occurrences]:
    """(records read, their identity occurrences) of a lake file (every row, or the given ones), as the graph
    keys them (`store_keys`); record indexes start at `base`. Null and empty ids are no identity (load.py
    skips them too)."""
    meta = footer(path)
    schema = meta.schema.to_arrow_schema()
    n = len(rows) if rows is not None else meta.num_rows
    at = schema.get_field_index(IDENTITY_MAP)
    if at < 0 or not identitymap.is_identity_map(schema.field(at).type):
        return n, Occurrences.concat([])
    table = read_rows(path, [IDENTITY_MAP], rows)
    entry_row, keys, lists = identitymap.entries(table.column(0))
    entry, ids, _, _ = identitymap.item_fields(lists)
    keep = pa.array(np.asarray(pc.and_(pc.is_valid(ids), pc.not_equal(pc.fill_null(ids, ""), ""))
                               .to_numpy(zero_copy_only=False), dtype=bool))
    record = entry_row[entry][np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)] + base
    namespace = keys.take(pa.array(entry, pa.int64())).filter(keep)
    return n, Occurrences(record.astype(np.int64), store_keys(namespace.cast(pa.string())),
                          store_keys(ids.filter(keep).cast(pa.string())))


def files_occurrences(paths: list[str]) -> tuple[list[int], Occurrences]:
    """(records per file, their identity occurrences) of whole lake files, records numbered across the files in
    the order given."""
    sizes, parts, base = [], [], 0
    for path in paths:
        n, occ = file_occurrences(path, base=base)
        sizes.append(n)
        parts.append(occ)
        base += n
    return sizes, Occurrences.concat(parts)


@dataclass
class Nodes:
    """The distinct identities of some occurrences: node i is (namespace[i], ids[i]); occurrence k is node
    node_of[k]."""

    keys: list[tuple[str, str]]
    node_of: np.ndarray  # int64 per occurrence


def number_nodes(occ: Occurrences) -> Nodes:
    """Distinct (namespace, id) pairs, numbered per namespace column at a time (no Python per occurrence)."""
    node_of = np.zeros(len(occ.record), dtype=np.int64)
    keys: list[tuple[str, str]] = []
    if not len(occ.record):
        return Nodes(keys, node_of)
    ns_enc = pc.dictionary_encode(occ.namespace)
    ns_code = np.asarray(ns_enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    for code, name in enumerate(ns_enc.dictionary.to_pylist()):
        at = np.flatnonzero(ns_code == code)
        if not len(at):
            continue
        enc = pc.dictionary_encode(occ.ids.take(pa.array(at, pa.int64())))
        node_of[at] = len(keys) + np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        keys.extend((name, v) for v in enc.dictionary.to_pylist())
    return Nodes(keys, node_of)


@dataclass
class GraphUpdate:
    """What adding records does to the persisted graph."""

    node_component: np.ndarray  # int64 per node: its component after the update
    record_component: np.ndarray  # int64 per record (-1: a record without identities)
    new_nodes: np.ndarray  # nodes the graph did not have (to insert)
    moves: list[tuple[int, int]]  # (old component, component it merges into)
    new_components: int  # component numbers taken from `first_new`


def union(n_records: int, occ: Occurrences, nodes: Nodes, existing: dict[int, int], first_new: int) -> GraphUpdate:
    """Connected components of the new records' identities together with the components those identities
    already belong to (`existing`: node -> component). A group that meets existing components keeps the
    smallest of their numbers and the others merge into it; a group that meets none gets a new number from
    `first_new` on. Cost: the records, their identities and the components they touch, never the graph."""
    n_nodes = len(nodes.keys)
    if n_nodes == 0:
        return GraphUpdate(np.zeros(0, np.int64), np.full(n_records, -1, np.int64), np.zeros(0, np.int64), [], 0)
    old_nodes = np.fromiter(existing.keys(), dtype=np.int64, count=len(existing))
    old_comps = np.fromiter(existing.values(), dtype=np.int64, count=len(existing))
    comp_values, comp_idx = np.unique(old_comps, return_inverse=True)
    # Graph nodes: identities 0..n_nodes-1, then one node per existing component.
    rec = occ.record
    first_occ = _first_occurrence(n_records, rec)
    src = np.concatenate([nodes.node_of, old_nodes])
    dst = np.concatenate([nodes.node_of[first_occ[rec]], n_nodes + comp_idx])
    total = n_nodes + len(comp_values)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(total, total))
    _, label = connected_components(graph, directed=False)
    big = np.iinfo(np.int64).max
    target = np.full(label.max() + 1 if total else 0, big, dtype=np.int64)
    np.minimum.at(target, label[n_nodes:], comp_values)
    moves = [(int(c), int(target[label[n_nodes + i]])) for i, c in enumerate(comp_values)
             if target[label[n_nodes + i]] != c]
    fresh = np.flatnonzero(target == big)
    target[fresh] = first_new + np.arange(len(fresh))
    node_component = target[label[:n_nodes]]
    record_component = np.full(n_records, -1, dtype=np.int64)
    has = first_occ >= 0
    record_component[has] = node_component[nodes.node_of[first_occ[has]]]
    is_new = np.ones(n_nodes, dtype=bool)
    is_new[old_nodes] = False
    return GraphUpdate(node_component, record_component, np.flatnonzero(is_new), moves, len(fresh))


def _first_occurrence(n_records: int, record: np.ndarray) -> np.ndarray:
    """Per record, the index of its first occurrence (-1 without one)."""
    first = np.full(n_records, -1, dtype=np.int64)
    if len(record):
        order = np.argsort(record, kind="stable")
        starts = np.flatnonzero(np.r_[True, record[order][1:] != record[order][:-1]])
        first[record[order][starts]] = order[starts]
    return first
