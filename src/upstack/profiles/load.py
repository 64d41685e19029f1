"""Read lake Parquet files into flat, type-unified leaf columns plus system columns and identity rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .model import DatasetInput
from .unify import cast_to, common_type, ms_to_numpy, to_epoch_ms

Path = tuple[str, ...]
SYSTEM = "_acp_system_metadata"
IDENTITY_MAP = "identityMap"
LAST_UPDATED: Path = ("extSourceSystemAudit", "lastUpdatedDate")
ALWAYS_READ = {SYSTEM, IDENTITY_MAP, LAST_UPDATED[0], "timestamp", "_id"}


def dotted(path: Path) -> str:
    return ".".join(path)


class Selector:
    """Which attribute paths a projection keeps: each requested dot path selects its subtree.

    Matching is on dotted text so that keys containing dots (segment ids like `a@b.com`) still match.
    A request that points inside a list (`items.sku`) keeps the whole list: lists are whole values.
    """

    def __init__(self, fields: Sequence[str] | None, extra_prefixes: Sequence[str] = ()):
        self.fields = None if fields is None else [f.strip() for f in fields if f and f.strip()]
        self.extra = list(extra_prefixes)

    @staticmethod
    def _related(p: str, f: str) -> bool:
        return p == f or p.startswith(f + ".") or f.startswith(p + ".")

    def wants(self, path: Path) -> bool:
        p = dotted(path)
        if any(self._related(p, f) for f in self.extra):
            return True
        return self.fields is None or any(self._related(p, f) for f in self.fields)


@dataclass
class IdentityRows:
    """One row per identity occurrence in a record (long format)."""

    record: np.ndarray  # int64 record index
    ns: np.ndarray  # int32 code into Records.namespaces
    id: pa.Array  # string
    primary: np.ndarray  # bool (null counted as False)
    auth: pa.Array  # string, nullable
    pos: np.ndarray  # int64 order inside the record: namespace field order, then list order


@dataclass
class Records:
    """All records of one kind, flattened; row i of every array is record i."""

    n: int
    leaves: dict[Path, pa.Array]
    dataset_ids: list[str]  # sorted, so comparing codes compares ids
    dataset: np.ndarray  # int32 code
    ingest_ms: np.ndarray  # int64
    batch: np.ndarray  # int64 code, ordered like the batch id strings
    row: np.ndarray  # int64 rowNumber inside the batch
    file: np.ndarray  # int64 code, ordered like the file paths (last-resort tie-break)
    time_ms: (
        np.ndarray
    )  # profile: coalesce(lastUpdatedDate, ingestTime); event: timestamp (-2**62 if missing)
    identities: IdentityRows
    namespaces: list[str] = field(default_factory=list)


def _struct_paths(t: pa.DataType, path: Path, structs: set[Path], leaves: set[Path]) -> None:
    if pa.types.is_struct(t) and t.num_fields > 0:
        structs.add(path)
        for f in t:
            _struct_paths(f.type, path + (f.name,), structs, leaves)
    else:
        leaves.add(path)


def _flatten(arr: pa.Array, path: Path, stops: set[Path], keep: Selector, out: dict[Path, pa.Array]) -> None:
    if pa.types.is_struct(arr.type) and arr.type.num_fields > 0 and path not in stops:
        if not keep.wants(path):
            return
        # StructArray.flatten folds the parent's nulls into each child, so a null object gives null leaves.
        for f, child in zip(arr.type, arr.flatten(), strict=True):
            _flatten(child, path + (f.name,), stops, keep, out)
    elif keep.wants(path):
        out[path] = arr


def _column(table: pa.Table, name: str) -> pa.Array | None:
    if name not in table.column_names:
        return None
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def _sub(arr: pa.Array | None, name: str) -> pa.Array | None:
    if arr is None or not pa.types.is_struct(arr.type) or arr.type.get_field_index(name) < 0:
        return None
    return arr.flatten()[arr.type.get_field_index(name)]


def _identity_rows(col: pa.Array | None, base: int, ns_codes: dict[str, int]) -> list[tuple]:
    """Explode `identityMap` (struct of namespace -> list of items) column by column, never row by row."""
    parts: list[tuple] = []
    if col is None or not pa.types.is_struct(col.type):
        return parts
    for k, (f, lst) in enumerate(zip(col.type, col.flatten(), strict=True)):
        if not (pa.types.is_list(lst.type) or pa.types.is_large_list(lst.type)):
            continue
        parents = np.asarray(pc.list_parent_indices(lst).to_numpy(zero_copy_only=False), dtype=np.int64)
        items = pc.list_flatten(lst)
        if len(items) == 0:
            continue
        if pa.types.is_struct(items.type):
            ids, primary, auth = (
                _sub(items, "id"),
                _sub(items, "primary"),
                _sub(items, "authenticatedState"),
            )
        else:
            ids, primary, auth = items, None, None
        if ids is None:
            continue
        ids = cast_to(ids, pa.string())
        m = len(ids)
        primary_np = (
            np.zeros(m, dtype=bool)
            if primary is None or not pa.types.is_boolean(primary.type)
            else np.asarray(pc.fill_null(primary, False).to_numpy(zero_copy_only=False), dtype=bool)
        )
        auth = pa.nulls(m, pa.string()) if auth is None else cast_to(auth, pa.string())
        first = np.searchsorted(parents, parents, side="left")
        pos = np.int64(k) * (1 << 32) + (np.arange(m, dtype=np.int64) - first)
        valid = np.asarray(
            pc.and_(pc.is_valid(ids), pc.not_equal(pc.fill_null(ids, ""), "")).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        code = ns_codes.setdefault(f.name, len(ns_codes))
        keep = pa.array(valid)
        parts.append(
            (
                parents[valid] + base,
                np.full(int(valid.sum()), code, dtype=np.int32),
                ids.filter(keep),
                primary_np[valid],
                auth.filter(keep),
                pos[valid],
            )
        )
    return parts


def load_records(
    inputs: Sequence[DatasetInput],
    kind: str,
    keep: Selector,
    *,
    skip_identity_map_leaves: bool,
    should_cancel: Callable[[], None] = lambda: None,
) -> Records:
    """Read every file of the inputs of `kind`, in a canonical (dataset id, path) order so that results
    never depend on the order files were listed in."""
    files = sorted((d.dataset_id, f) for d in inputs if d.kind == kind for f in d.files)
    dataset_ids = sorted({d for d, _ in files})
    ds_code = {d: i for i, d in enumerate(dataset_ids)}
    file_rank = {f: i for i, f in enumerate(sorted(f for _, f in files))}
    tables = []
    for _, f in files:
        # Read only the top-level columns the projection can use (plus the ones the engine always needs).
        names = pq.read_schema(f).names
        needed = [c for c in names if c in ALWAYS_READ or keep.wants((c,))]
        tables.append(pq.read_table(f, columns=needed))
        should_cancel()

    # A path that is an object in one file and a scalar/list in another is kept whole (not descended),
    # and the type unifier then turns the disagreement into text.
    structs: set[Path] = set()
    scalars: set[Path] = set()
    for t in tables:
        for fld in t.schema:
            if fld.name != SYSTEM:
                _struct_paths(fld.type, (fld.name,), structs, scalars)
    stops = structs & scalars

    ns_codes: dict[str, int] = {}
    flat: list[dict[Path, pa.Array]] = []
    id_parts: list[tuple] = []
    dataset, ingest, batch_raw, row, file_code, time_ms = [], [], [], [], [], []
    base = 0
    for (ds, f), table in zip(files, tables, strict=True):
        n = table.num_rows
        out: dict[Path, pa.Array] = {}
        for name in table.column_names:
            if name == SYSTEM or (skip_identity_map_leaves and name == IDENTITY_MAP):
                continue
            _flatten(_column(table, name), (name,), stops, keep, out)
        system = _column(table, SYSTEM)
        ing = _sub(system, "ingestTime")
        ingest_np = ms_to_numpy(to_epoch_ms(ing), 0) if ing is not None else np.zeros(n, dtype=np.int64)
        rown = _sub(system, "rowNumber")
        row_np = (
            ms_to_numpy(cast_to(rown, pa.int64()), 0)
            if rown is not None and pa.types.is_integer(rown.type)
            else np.arange(n, dtype=np.int64)
        )
        bid = _sub(system, "commitBatchId")
        batch_raw.append(
            pc.fill_null(cast_to(bid, pa.string()), "")
            if bid is not None
            else pa.repeat(pa.scalar("", pa.string()), n)
        )
        if kind == "profile":
            lud = _sub(_column(table, LAST_UPDATED[0]), LAST_UPDATED[1])
            lud_ms = to_epoch_ms(lud) if lud is not None else pa.nulls(n, pa.int64())
            time_np = np.where(
                pc.is_null(lud_ms).to_numpy(zero_copy_only=False), ingest_np, ms_to_numpy(lud_ms, 0)
            )
        else:
            ts = _column(table, "timestamp")
            ts_ms = to_epoch_ms(ts) if ts is not None else pa.nulls(n, pa.int64())
            time_np = ms_to_numpy(ts_ms, -(2**62))
            # Events always carry `_id` and a real timestamp type, whatever the file stored.
            if ("timestamp",) in out or keep.wants(("timestamp",)):
                out[("timestamp",)] = pc.cast(ts_ms, pa.timestamp("ms", tz="UTC"))
            if ("_id",) in out:
                out[("_id",)] = cast_to(out[("_id",)], pa.string())
        id_parts.extend(_identity_rows(_column(table, IDENTITY_MAP), base, ns_codes))
        flat.append(out)
        dataset.append(np.full(n, ds_code[ds], dtype=np.int32))
        ingest.append(ingest_np)
        row.append(row_np)
        file_code.append(np.full(n, file_rank[f], dtype=np.int64))
        time_ms.append(time_np)
        base += n

    # Paths in first-seen order (canonical file order), so rebuilt objects keep the records' field order.
    paths: list[Path] = []
    seen: set[Path] = set()
    for out in flat:
        for p in out:
            if p not in seen:
                seen.add(p)
                paths.append(p)
    leaves: dict[Path, pa.Array] = {}
    for p in paths:
        target = common_type(out[p].type for out in flat if p in out)
        if pa.types.is_null(target):
            continue  # never a value anywhere: nothing to merge or show
        chunks = [
            cast_to(out[p], target) if p in out else pa.nulls(t.num_rows, target)
            for out, t in zip(flat, tables, strict=True)
        ]
        leaves[p] = pa.concat_arrays(chunks) if chunks else pa.nulls(0, target)

    # Dense rank of the batch id strings: an integer that sorts like the ids (record-order tie-break).
    batch_ids = pa.concat_arrays(batch_raw) if batch_raw else pa.array([], pa.string())
    batch_code = (
        pc.rank(batch_ids, sort_keys="ascending", tiebreaker="dense").to_numpy() if base else np.zeros(0)
    )
    namespaces = [None] * len(ns_codes)
    for name, code in ns_codes.items():
        namespaces[code] = name

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    identities = IdentityRows(
        record=cat([p[0] for p in id_parts], np.int64),
        ns=cat([p[1] for p in id_parts], np.int32),
        id=pa.concat_arrays([p[2] for p in id_parts]) if id_parts else pa.array([], pa.string()),
        primary=cat([p[3] for p in id_parts], bool),
        auth=pa.concat_arrays([p[4] for p in id_parts]) if id_parts else pa.array([], pa.string()),
        pos=cat([p[5] for p in id_parts], np.int64),
    )
    return Records(
        n=base,
        leaves=leaves,
        dataset_ids=dataset_ids,
        dataset=cat(dataset, np.int32),
        ingest_ms=cat(ingest, np.int64),
        batch=np.asarray(batch_code, dtype=np.int64),
        row=cat(row, np.int64),
        file=cat(file_code, np.int64),
        time_ms=cat(time_ms, np.int64),
        identities=identities,
        namespaces=namespaces,
    )
