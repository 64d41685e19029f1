"""The identityMap column as the lake stores it, shared by ingestion (`lake`) and the merge engine (`profiles`).

AEP's data lake stores `identityMap` as a Parquet map, `MAP<string, LIST<STRUCT<id, authenticatedState,
primary>>>` (CONTRACT §4): each record holds only the namespaces it has, and Query Service reads
`identityMap['ECID'][0].id`. Lakes written before this layout hold a struct with one member per namespace
(`STRUCT<ECID: LIST<...>, Email: LIST<...>>`); every reader here takes both, so such lakes keep working.

Everything is column at a time (pyarrow.compute and numpy), never row by row. Pure pyarrow: imports no
other upstack module, so both sides may import it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COLUMN = "identityMap"
ITEM = pa.struct([("id", pa.string()), ("authenticatedState", pa.string()), ("primary", pa.bool_())])
MAP_TYPE = pa.map_(pa.string(), pa.list_(ITEM))


def is_identity_map(t: pa.DataType) -> bool:
    """A column of either layout (the map, or the legacy struct of namespace lists)."""
    return pa.types.is_map(t) or pa.types.is_struct(t)


def _items(items: pa.Array) -> pa.StructArray:
    """Identity items of any stored form as ITEM: members by name, missing or mistyped ones null."""
    m = len(items)
    if not pa.types.is_struct(items.type):
        ids = items.cast(pa.string()) if _is_text(items.type) else pa.nulls(m, pa.string())
        return pa.StructArray.from_arrays([ids, pa.nulls(m, pa.string()), pa.nulls(m, pa.bool_())], fields=list(ITEM))
    if items.type == ITEM:
        return items
    children = []
    for f in ITEM:
        at = items.type.get_field_index(f.name)
        child = items.field(at) if at >= 0 else None
        if child is None or not (child.type == f.type or pa.types.is_null(child.type)
                                 or (_is_text(child.type) and _is_text(f.type))):
            children.append(pa.nulls(m, f.type))
        else:
            children.append(child.cast(f.type))
    mask = items.is_null() if items.null_count else None
    return pa.StructArray.from_arrays(children, fields=list(ITEM), mask=mask)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _lists(arr: pa.Array) -> pa.Array:
    """A list column with ITEM items (a list of the legacy struct's member, or a map's values)."""
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.list_(ITEM))
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        return pa.nulls(len(arr), pa.list_(ITEM))
    if arr.type == pa.list_(ITEM):
        return arr
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = _items(arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])))
    offsets = offsets - offsets[0]
    mask = arr.is_null() if arr.null_count else None
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=mask)


def entries(arr: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """The (namespace -> list) entries of a column of either layout: (row of each entry, its namespace,
    its list of ITEM), entries in row order and, within a row, in stored order (map entry order, or the
    legacy struct's member order). A null list (a legacy namespace the row does not have) is no entry."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    n = len(arr)
    if pa.types.is_map(arr.type):
        offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        lo, hi = int(offsets[0]), int(offsets[-1])
        counts = np.diff(offsets)
        if arr.null_count:
            counts = np.where(arr.is_valid().to_numpy(zero_copy_only=False), counts, 0)
        row = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
        keys, lists = arr.keys.slice(lo, hi - lo), arr.items.slice(lo, hi - lo)
        live = np.repeat(counts > 0, np.diff(offsets)) if arr.null_count else None
        if live is not None and not live.all():
            keep = pa.array(live)
            row, keys, lists = row[live], keys.filter(keep), lists.filter(keep)
        return row, keys.cast(pa.string()), _lists(lists)
    if not pa.types.is_struct(arr.type) or arr.type.num_fields == 0:
        return np.zeros(0, np.int64), pa.array([], pa.string()), pa.array([], pa.list_(ITEM))
    members = arr.flatten()  # folds a null struct row into each member
    k = len(members)
    valid = np.stack([m.is_valid().to_numpy(zero_copy_only=False) for m in members], axis=1)  # n x k
    row, member = np.nonzero(valid)  # row-major: by row, then member order
    names = pa.array([f.name for f in arr.type], pa.string())
    stacked = pa.concat_arrays([_lists(m) for m in members])  # member-major: member j's row r is j*n + r
    lists = stacked.take(pa.array(member.astype(np.int64) * n + row, pa.int64())) if k else stacked
    return row.astype(np.int64), names.take(pa.array(member, pa.int64())), lists


def from_entries(row: np.ndarray, keys: pa.Array, lists: pa.Array, n: int,
                 null_rows: np.ndarray | None = None) -> pa.MapArray:
    """A MAP_TYPE column of n rows from entries sorted by row (`null_rows`: rows that are null, not empty)."""
    counts = np.bincount(row, minlength=n) if len(row) else np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    mask = pa.array(null_rows) if null_rows is not None and null_rows.any() else None
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), keys.cast(pa.string()), _lists(lists),
                                   type=MAP_TYPE, mask=mask)


def to_map(arr: pa.Array | pa.ChunkedArray) -> pa.MapArray:
    """A column of either layout as MAP_TYPE; null rows stay null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type == MAP_TYPE:
        return arr
    row, keys, lists = entries(arr)
    null_rows = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    return from_entries(row, keys, lists, len(arr), null_rows)


def with_map_layout(table: pa.Table) -> pa.Table:
    """`table` with its identityMap column (if any) in the map layout."""
    at = table.schema.get_field_index(COLUMN)
    if at < 0 or table.schema.field(at).type == MAP_TYPE:
        return table
    return table.set_column(at, COLUMN, to_map(table.column(at)))


def item_fields(lists: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array, pa.Array]:
    """The items of a list-of-ITEM column flattened: (entry of each item, id, authenticatedState, primary)."""
    entry = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    items = pc.list_flatten(lists)
    return entry, items.field("id"), items.field("authenticatedState"), items.field("primary")
