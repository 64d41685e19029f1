"""Build output columns: nested objects from merged leaves, identityMap, the legacy identities view, lists."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from upstack import identitymap

from .identity import Nodes
from .load import Path
from .textsort import NodeTexts

LEGACY_ITEM = pa.struct(
    [("id", pa.string()), ("namespace", pa.struct([("code", pa.string())])), ("primary", pa.bool_())]
)


def lists_from_long(parent: np.ndarray, values: pa.Array, n: int, *, null_when_empty: bool) -> pa.Array:
    """A list column of length n from long rows already sorted by `parent` (the output row index)."""
    counts = np.bincount(parent, minlength=n) if len(parent) else np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    mask = pa.array(counts == 0) if null_when_empty else None
    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=mask)
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values, mask=mask)


def _all_null(arrays: list[pa.Array]) -> pa.Array:
    return reduce(pc.and_, (pc.is_null(a) for a in arrays))


def unflatten(leaves: dict[Path, pa.Array], n: int) -> list[tuple[str, pa.Array]]:
    """Rebuild nested structs from leaf paths, keeping first-seen field order; an object whose leaves are
    all null is itself null, as the records had it absent."""
    tree: dict = {}
    for path, arr in leaves.items():
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):  # a leaf and an object at one path: the loader prevents it
                break
        else:
            node[path[-1]] = arr

    def build(node: dict) -> pa.Array:
        names, children = [], []
        for name, child in node.items():
            names.append(name)
            children.append(build(child) if isinstance(child, dict) else child)
        return pa.StructArray.from_arrays(children, names=names, mask=_all_null(children))

    return [(name, build(child) if isinstance(child, dict) else child) for name, child in tree.items()]


def identity_map(
    profile: np.ndarray,
    node: np.ndarray,
    auth: np.ndarray,
    auth_values: list[str],
    primary_node: np.ndarray,
    nodes: Nodes,
    texts: NodeTexts,
    n: int,
) -> pa.Array:
    """identityMap as the lake stores it (`identitymap.MAP_TYPE`): per profile, one entry per namespace it
    has (in namespace code order), each a list of {id, authenticatedState, primary}, from identity rows
    sorted by (profile, node) (`auth`: codes into auth_values, -1 for none). `primary` is true only for the
    profile's representative identity."""
    ns = nodes.ns[node] if len(node) else np.zeros(0, dtype=np.int32)
    # (profile, namespace) groups, node order kept inside each: every entry is then one slice.
    order = np.lexsort((ns, profile)) if len(node) else np.zeros(0, dtype=np.int64)
    node, profile, auth, ns = node[order], profile[order], auth[order], ns[order]
    items = pa.StructArray.from_arrays(
        [
            texts.take(node),
            pa.array(auth_values or [""], pa.string()).take(pa.array(np.maximum(auth, 0), pa.int64(), mask=auth < 0)),
            pa.array(node == primary_node[profile] if len(node) else np.zeros(0, dtype=bool)),
        ],
        fields=list(identitymap.ITEM),
    )
    starts = np.flatnonzero(np.r_[True, (profile[1:] != profile[:-1]) | (ns[1:] != ns[:-1])]) if len(node) else \
        np.zeros(0, dtype=np.int64)
    offsets = np.r_[starts, len(node)].astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items)
    keys = pa.array(nodes.namespaces, pa.string()).take(pa.array(ns[starts], pa.int64()))
    return identitymap.from_entries(profile[starts].astype(np.int64), keys, lists, n)


def legacy_identities(
    profile: np.ndarray, node: np.ndarray, primary_node: np.ndarray, nodes: Nodes, texts: NodeTexts, n: int
) -> pa.Array:
    """The pre-identityMap view: identities[{id, namespace{code}, primary}], same order as identityMap."""
    ns = nodes.ns[node] if len(node) else np.zeros(0, dtype=np.int32)
    codes = pa.array(nodes.namespaces, pa.string()).take(pa.array(ns, pa.int32()))
    items = pa.StructArray.from_arrays(
        [
            texts.take(node),
            pa.StructArray.from_arrays([codes], names=["code"]),
            pa.array(node == primary_node[profile] if len(node) else np.zeros(0, dtype=bool)),
        ],
        fields=list(LEGACY_ITEM),
    )
    return lists_from_long(profile, items, n, null_when_empty=False)


def wants_legacy_identities(fields: tuple[str, ...] | None) -> bool:
    return fields is not None and any(f == "identities" or f.startswith("identities.") for f in fields)
