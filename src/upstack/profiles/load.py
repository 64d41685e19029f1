"""Read lake Parquet files: system columns and identity rows per record, and flat, type-unified leaf columns."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from upstack import identitymap

from .model import DatasetInput
from .sorting import index_dtype, lexsort
from .textsort import TextSpill
from .unify import cast_to, common_type, ms_to_numpy, to_epoch_ms

Path = tuple[str, ...]
SYSTEM = "_acp_system_metadata"
IDENTITY_MAP = "identityMap"
LAST_UPDATED: Path = ("extSourceSystemAudit", "lastUpdatedDate")
EVENT_TIME = pa.timestamp("ms", tz="UTC")
NO_TIME = -(2**62)  # event without a parseable timestamp
SMALL_SELECTION = 100_000  # rows of a selection merged as one part without estimating its size
# Bytes of Parquet footers kept per process (published files never change; a lookup reopens the same ones). By
# bytes, not count: a wide file's footer (hundreds of columns per row group) can take megabytes.
FOOTER_BYTES = 64 * 2**20


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
    """One row per identity occurrence in a record (long format), in read order."""

    record: np.ndarray  # int32 record index
    node: np.ndarray  # int32 node number (set by identity.encode_nodes), -1 before
    auth: np.ndarray  # int8 code into Records.auth_values, -1 for none


@dataclass
class Records:
    """All records of one kind; element i of every per-record array is record i."""

    n: int
    dataset_ids: list[str]  # sorted, so comparing codes compares ids
    dataset: np.ndarray  # int32 code
    ingest_ms: np.ndarray  # int64
    order: np.ndarray  # int64 rank in record order: (ingestTime, commitBatchId, rowNumber, file path)
    time_ms: np.ndarray  # profile: coalesce(lastUpdatedDate, ingestTime); event: timestamp (NO_TIME if none)
    identities: IdentityRows
    primary_occ: np.ndarray  # int64 identity row of the record's primary identity, -1 without identities
    namespaces: list[str] = field(default_factory=list)  # sorted
    # Per namespace (same order): id strings of its identity rows and where those rows are (empty when read
    # with a TextSpill, which has them on disk); consumed by identity.encode_nodes, which turns them into
    # node numbers.
    ns_ids: list[list[pa.Array]] = field(default_factory=list)
    ns_rows: list[list[np.ndarray]] = field(default_factory=list)
    auth_values: list[str] = field(default_factory=list)
    leaves: dict[Path, pa.Array | pa.ChunkedArray] = field(default_factory=dict)  # only when read with leaves


RECORD_ARRAYS = ("dataset", "ingest_ms", "order", "time_ms", "primary_occ")
IDENTITY_ARRAYS = ("record", "node", "auth")


def index_arrays(
    r: Records, records: tuple[str, ...] = RECORD_ARRAYS, identities: tuple[str, ...] = IDENTITY_ARRAYS
) -> list[tuple[object, tuple[str, ...]]]:
    """Per-record and per-identity arrays of `r` (all by default), as park.parked takes them."""
    return [(r, records), (r.identities, identities)]


# -- which files, which columns, which leaf types -------------------------------------------------------


@dataclass
class FileSet:
    """The files of one kind in canonical (dataset id, path) order, so that results never depend on the
    order files were listed in, and the leaf paths they hold with their unified types."""

    kind: str
    keep: Selector
    skip_identity_map_leaves: bool
    files: list[tuple[str, str]]
    dataset_ids: list[str]
    rows: list[int]  # per file
    columns: list[list[str]]  # top-level columns to read per file (index and leaves)
    stops: set[Path]
    types: dict[Path, pa.DataType]  # leaf path -> unified type, first-seen order
    # The last `linking_files` files are read for their identities only (pdg + dataSetPrecedence: datasets
    # outside `order` still link identities, but have no leaves); they come after every merged file, so the
    # merged records are exactly the first `merged_n`.
    linking_files: int = 0
    # path -> ascending row numbers, for files read in part (DatasetInput.rows); `rows` counts those.
    take: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return sum(self.rows)

    @property
    def merged_files(self) -> int:
        return len(self.files) - self.linking_files

    @property
    def merged_n(self) -> int:
        """Records of the merged files (the first ones): the others only link identities."""
        return sum(self.rows[: self.merged_files])

    def index_columns(self, i: int) -> list[str]:
        """The columns the index pass needs: system metadata, identities, and the ranking time."""
        wanted = {SYSTEM, IDENTITY_MAP, LAST_UPDATED[0] if self.kind == "profile" else "timestamp"}
        return [c for c in self.columns[i] if c in wanted]

    def leaf_columns(self, i: int) -> list[str]:
        return [c for c in self.columns[i] if c != SYSTEM and not (self.skip_identity_map_leaves and c == IDENTITY_MAP)]

    def is_small_selection(self) -> bool:
        """Every file is read in part, SMALL_SELECTION rows at most in all: a lookup's component."""
        return len(self.take) == len(self.files) and self.n <= SMALL_SELECTION

    def read(self, i: int, columns: list[str]) -> pa.Table:
        """File i's `columns`: every row, or only its selected ones (`take`)."""
        path = self.files[i][1]
        return read_rows(path, columns, self.take.get(path))

    def identity_text_bytes(self) -> int:
        """Bytes of identity ids in the files, from the Parquet footers (uncompressed column chunks; a file
        read in part counts its share of rows)."""
        total = 0
        for _, f in self.files:
            meta = footer(f)
            share = len(self.take[f]) / max(meta.num_rows, 1) if f in self.take else 1.0
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                for c in range(rg.num_columns):
                    col = rg.column(c)
                    path = col.path_in_schema
                    if path.startswith(IDENTITY_MAP + ".") and path.endswith(".id"):
                        total += int(col.total_uncompressed_size * share)
        return total

    def estimate_leaf_bytes(self) -> int:
        """In-memory size of all leaf columns, from a sample of the first rows of each dataset's first file."""
        if not self.types:
            return 0
        total = 0
        merged = self.files[: self.merged_files]
        for ds in sorted({d for d, _ in merged}):
            idx = [i for i, (d, _) in enumerate(merged) if d == ds]
            rows = sum(self.rows[i] for i in idx)
            first = next((i for i in idx if self.rows[i]), None)
            if first is None:
                continue
            if self.files[first][1] in self.take:  # a selection is small: its rows are the sample
                sample = self.read(first, self.leaf_columns(first))
            else:
                pf = pq.ParquetFile(self.files[first][1])
                batch = next(pf.iter_batches(batch_size=20_000, columns=self.leaf_columns(first)), None)
                sample = pa.Table.from_batches([batch]) if batch is not None else None
            if sample is None or sample.num_rows == 0:
                continue
            leaves = file_leaves(sample, self)
            per_row = sum(a.nbytes for a in leaves.values()) / sample.num_rows
            total += int(per_row * rows)
        return total


_footers: OrderedDict[tuple[str, int, int], pq.FileMetaData] = OrderedDict()
_footer_bytes = 0
_footer_lock = threading.Lock()


def footer(path: str) -> pq.FileMetaData:
    """The file's Parquet footer, read once per version of the file (path, modification time, size) and kept
    while the most recently used ones fit FOOTER_BYTES."""
    global _footer_bytes
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    with _footer_lock:
        meta = _footers.get(key)
        if meta is not None:
            _footers.move_to_end(key)
            return meta
    meta = pq.read_metadata(path)
    with _footer_lock:
        if key not in _footers and meta.serialized_size <= FOOTER_BYTES // 4:
            _footers[key] = meta
            _footer_bytes += meta.serialized_size
            while _footer_bytes > FOOTER_BYTES:
                _, old = _footers.popitem(last=False)
                _footer_bytes -= old.serialized_size
    return meta


def read_rows(path: str, columns: list[str], rows: np.ndarray | None = None) -> pa.Table:
    """`columns` of a Parquet file: every row, or the given ascending row numbers, read from the row groups
    that hold them (a lookup reads a few rows of a large file), in file order."""
    pf = pq.ParquetFile(path, metadata=footer(path))
    if rows is None:
        return pf.read(columns=columns)
    if not len(rows):
        return pf.schema_arrow.empty_table().select(columns)
    meta = pf.metadata
    bounds = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    group_of = np.searchsorted(bounds, rows, side="right") - 1
    groups = np.unique(group_of)
    table = pf.read_row_groups(groups.tolist(), columns=columns)
    # Where each chosen group starts in `table`: rows are taken by their place in the groups read.
    starts = np.zeros(len(bounds), dtype=np.int64)
    starts[groups] = np.cumsum(np.r_[0, np.diff(bounds)[groups][:-1]])
    return table.take(pa.array(starts[group_of] + rows - bounds[group_of], pa.int64()))


def _type_paths(t: pa.DataType, path: Path, stops: set[Path], keep: Selector, out: dict[Path, list]) -> None:
    """Mirror of _flatten over types: the leaf paths a column yields."""
    if pa.types.is_struct(t) and t.num_fields > 0 and path not in stops:
        if not keep.wants(path):
            return
        for f in t:
            _type_paths(f.type, path + (f.name,), stops, keep, out)
    elif keep.wants(path):
        out.setdefault(path, []).append(t)


def _struct_paths(t: pa.DataType, path: Path, structs: set[Path], leaves: set[Path]) -> None:
    if pa.types.is_struct(t) and t.num_fields > 0:
        structs.add(path)
        for f in t:
            _struct_paths(f.type, path + (f.name,), structs, leaves)
    else:
        leaves.add(path)


def file_set(
    inputs: Sequence[DatasetInput],
    kind: str,
    keep: Selector,
    *,
    skip_identity_map_leaves: bool,
    linking: Sequence[DatasetInput] = (),
) -> FileSet:
    """Plan the reading of every file of `kind` from the Parquet footers alone (no data is read). The files
    of `linking` come last and are read for their identities only: their columns never shape the leaf types,
    so a dataset that is not merged cannot change how the merged ones read."""
    files = sorted((d.dataset_id, f) for d in inputs if d.kind == kind for f in d.files)
    merged_files = len(files)
    files += sorted((d.dataset_id, f) for d in linking if d.kind == kind for f in d.files)
    take = {f: np.asarray(r, dtype=np.int64) for d in (*inputs, *linking) if d.kind == kind
            for f, r in d.selection().items()}
    dataset_ids = sorted({d for d, _ in files})
    always = {SYSTEM, IDENTITY_MAP, LAST_UPDATED[0], "timestamp", "_id"}
    index_only = {SYSTEM, IDENTITY_MAP, LAST_UPDATED[0] if kind == "profile" else "timestamp"}
    schemas, rows, columns = [], [], []
    for i, (_, f) in enumerate(files):
        meta = footer(f)
        rows.append(len(take[f]) if f in take else meta.num_rows)
        schema = meta.schema.to_arrow_schema()
        if i >= merged_files:
            columns.append([c for c in schema.names if c in index_only])
            continue
        schemas.append(schema)
        columns.append([c for c in schema.names if c in always or keep.wants((c,))])

    # A path that is an object in one file and a scalar/list in another is kept whole (not descended),
    # and the type unifier then turns the disagreement into text.
    structs: set[Path] = set()
    scalars: set[Path] = set()
    for schema, cols in zip(schemas, columns[:merged_files], strict=True):
        for name in cols:
            if name not in (SYSTEM, IDENTITY_MAP):
                _struct_paths(schema.field(name).type, (name,), structs, scalars)
    stops = structs & scalars

    # Paths in first-seen order (canonical file order), so rebuilt objects keep the records' field order.
    seen: dict[Path, list] = {}
    for schema, cols in zip(schemas, columns[:merged_files], strict=True):
        per_file: dict[Path, list] = {}
        for name in cols:
            if name == SYSTEM or (skip_identity_map_leaves and name == IDENTITY_MAP):
                continue
            if name == IDENTITY_MAP:  # one leaf, the lake's map, whichever layout the file stores
                if keep.wants((name,)):
                    per_file[(name,)] = [identitymap.MAP_TYPE]
                continue
            _type_paths(schema.field(name).type, (name,), stops, keep, per_file)
        if kind == "event":
            # Events always carry `_id` as text and a real timestamp type, whatever the file stored.
            if ("timestamp",) in per_file or keep.wants(("timestamp",)):
                per_file[("timestamp",)] = [EVENT_TIME]
            if ("_id",) in per_file:
                per_file[("_id",)] = [pa.string()]
        for p, ts in per_file.items():
            seen.setdefault(p, []).extend(ts)
    types = {}
    for p, ts in seen.items():
        target = common_type(ts)
        if not pa.types.is_null(target):  # never a value anywhere: nothing to merge or show
            types[p] = target
    return FileSet(kind, keep, skip_identity_map_leaves, files, dataset_ids, rows, columns, stops, types,
                   linking_files=len(files) - merged_files, take=take)


# -- leaves ----------------------------------------------------------------------------------------------


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
    at = table.schema.get_field_index(name)  # a hash lookup; `name in table.column_names` builds the list
    if at < 0:
        return None
    return _whole(table.column(at))


def _whole(col: pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def _sub(arr: pa.Array | None, name: str) -> pa.Array | None:
    if arr is None or not pa.types.is_struct(arr.type) or arr.type.get_field_index(name) < 0:
        return None
    return arr.flatten()[arr.type.get_field_index(name)]


def event_time_ms(table: pa.Table) -> pa.Array:
    ts = _column(table, "timestamp")
    return to_epoch_ms(ts) if ts is not None else pa.nulls(table.num_rows, pa.int64())


def file_leaves(table: pa.Table, fs: FileSet, take: np.ndarray | None = None) -> dict[Path, pa.Array]:
    """Every leaf path of the file set for the rows of `table` (all, or those in `take`), cast to the
    unified types; paths the file lacks are null."""
    n = table.num_rows
    out: dict[Path, pa.Array] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if name == SYSTEM or (fs.skip_identity_map_leaves and name == IDENTITY_MAP):
            continue
        if name == IDENTITY_MAP:
            if fs.keep.wants((name,)):
                out[(name,)] = identitymap.to_map(col)
            continue
        _flatten(_whole(col), (name,), fs.stops, fs.keep, out)
    if fs.kind == "event" and ("timestamp",) in fs.types:
        out[("timestamp",)] = pc.cast(event_time_ms(table), EVENT_TIME)
    idx = None if take is None else pa.array(take, pa.int64())
    m = n if take is None else len(take)
    leaves = {}
    for p, target in fs.types.items():
        arr = out.get(p)
        if arr is None:
            leaves[p] = pa.nulls(m, target)
            continue
        if idx is not None:
            arr = arr.take(idx)
        leaves[p] = cast_to(arr, target)
    return leaves


def iter_leaf_batches(fs: FileSet, check: Callable[[], None]) -> Iterator[tuple[int, pa.Table]]:
    """(first record index, table of the leaf columns) per row group of every merged file, in record order
    (the linking files, last, have no leaves)."""
    base = 0
    for i, (_, f) in enumerate(fs.files[: fs.merged_files]):
        cols = fs.leaf_columns(i)
        if f in fs.take:
            table = fs.read(i, cols)
            yield base, table
            base += table.num_rows
            check()
            continue
        pf = pq.ParquetFile(f)
        for g in range(pf.metadata.num_row_groups):
            table = pf.read_row_group(g, columns=cols)
            yield base, table
            base += table.num_rows
            check()


# -- index: system columns and identities ----------------------------------------------------------------


class _Dictionary:
    """Append-only string -> code mapping for small vocabularies (batch ids, authenticatedState values)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, arr: pa.Array, dtype) -> np.ndarray:
        """Codes of the values of `arr` (-1 for null)."""
        if len(arr) and arr.null_count == 0:
            first = arr[0].as_py()
            if pc.all(pc.equal(arr, first)).as_py():  # one batch per file: the usual case
                return np.full(len(arr), self.codes.setdefault(first, len(self.codes)), dtype=dtype)
        enc = pc.dictionary_encode(arr)
        local = np.asarray([self.codes.setdefault(v, len(self.codes)) for v in enc.dictionary.to_pylist()] or [0])
        idx = enc.indices
        codes = local[np.asarray(pc.fill_null(idx, 0).to_numpy(zero_copy_only=False), dtype=np.int64)]
        if idx.null_count:
            codes = np.where(np.asarray(idx.is_null().to_numpy(zero_copy_only=False)), -1, codes)
        return codes.astype(dtype)

    def sorted_ranks(self) -> tuple[list[str], np.ndarray]:
        values = sorted(self.codes)
        rank = np.zeros(max(len(self.codes), 1), dtype=np.int64)
        for r, v in enumerate(values):
            rank[self.codes[v]] = r
        return values, rank


def _record_order(ingest: np.ndarray, batch: np.ndarray, row: np.ndarray, file: np.ndarray) -> np.ndarray:
    """Indices in record order (ingest, batch, row, file). Lake files hold one batch ingested at one time, so
    usually (ingest, batch, file) is constant per file and one integer sort on (file's place, row) does."""
    n = len(row)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, file[1:] != file[:-1]])
    ends = np.r_[starts[1:], n]
    runs = np.repeat(np.arange(len(starts)), ends - starts)
    same = (
        np.array_equal(ingest, ingest[starts][runs])
        and np.array_equal(batch, batch[starts][runs])
        and row.min() >= 0
        and row.max() < 2**40
        and len(starts) < 2**22
    )
    if not same:
        return lexsort((file, row, batch, ingest))
    run_place = np.empty(len(starts), dtype=np.int64)
    run_place[np.lexsort((file[starts], batch[starts], ingest[starts]))] = np.arange(len(starts), dtype=np.int64)
    return np.argsort(run_place[runs] * 2**40 + row, kind="stable")


class _IndexBuilder:
    """Accumulates, file by file, the per-record system arrays and the identity rows of one kind."""

    def __init__(self, fs: FileSet, spill: TextSpill | None = None, side: int = 0):
        self.fs, self.spill, self.side = fs, spill, side
        self.ns_codes: dict[str, int] = {}
        self.ns_ids: list[list[pa.Array]] = []
        self.ns_rows: list[list[np.ndarray]] = []
        self.auth = _Dictionary()
        self.batches = _Dictionary()
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("dataset", "ingest", "batch", "row", "file", "time",
                                                                  "primary")}
        self.id_record: list[np.ndarray] = []
        self.id_auth: list[np.ndarray] = []
        self.base = 0
        self.occ = 0

    def add(self, i: int, table: pa.Table) -> None:
        fs, n = self.fs, table.num_rows
        ds, path = fs.files[i]
        system = _column(table, SYSTEM)
        ing = _sub(system, "ingestTime")
        ingest_np = ms_to_numpy(to_epoch_ms(ing), 0) if ing is not None else np.zeros(n, dtype=np.int64)
        rown = _sub(system, "rowNumber")
        row_np = (
            ms_to_numpy(cast_to(rown, pa.int64()), 0)
            if rown is not None and pa.types.is_integer(rown.type)
            else np.arange(n, dtype=np.int64)
        )
        if n and 0 <= row_np.min() and row_np.max() < 2**31:
            row_np = row_np.astype(np.int32)
        bid = _sub(system, "commitBatchId")
        bid = pc.fill_null(cast_to(bid, pa.string()), "") if bid is not None else pa.repeat(pa.scalar("", pa.string()), n)
        if fs.kind == "profile":
            lud = _sub(_column(table, LAST_UPDATED[0]), LAST_UPDATED[1])
            lud_ms = to_epoch_ms(lud) if lud is not None else pa.nulls(n, pa.int64())
            time_np = np.where(pc.is_null(lud_ms).to_numpy(zero_copy_only=False), ingest_np, ms_to_numpy(lud_ms, 0))
        else:
            time_np = ms_to_numpy(event_time_ms(table), NO_TIME)
        self.parts["dataset"].append(np.full(n, fs.dataset_ids.index(ds), dtype=np.int32))
        self.parts["ingest"].append(ingest_np)
        self.parts["batch"].append(self.batches.encode(bid, np.int32))
        self.parts["row"].append(row_np)
        self.parts["file"].append(np.full(n, i, dtype=np.int32))
        self.parts["time"].append(time_np)
        self.parts["primary"].append(self._identities(_column(table, IDENTITY_MAP), n))
        self.base += n

    def _identities(self, col: pa.Array | None, n: int) -> np.ndarray:
        """Explode `identityMap` (the lake's map, or the legacy struct of namespace lists) column at a time,
        never row by row; return the identity row of each record's primary identity: the first item flagged
        primary, else the first item (stored entry order, then list order), -1 without identities."""
        rec_parts, pos_parts, prim_parts = [], [], []
        if col is not None and identitymap.is_identity_map(col.type):
            entry_row, keys, lists = identitymap.entries(col)
            entry, ids, auth, primary = identitymap.item_fields(lists)
            parents = entry_row[entry]
            # Items grouped by namespace (stable: record order, then entry and list order, inside each).
            key_enc = pc.dictionary_encode(keys)
            key_names = key_enc.dictionary.to_pylist()
            item_key = np.asarray(key_enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)[entry]
            by_key = np.argsort(item_key, kind="stable")
            item_key, parents = item_key[by_key], parents[by_key]
            pos = by_key  # the item's place in stored order: the primary fallback takes the smallest
            take = pa.array(by_key, pa.int64())
            ids, auth = ids.take(take), auth.take(take)
            primary_np = np.asarray(pc.fill_null(primary, False).to_numpy(zero_copy_only=False), dtype=bool)[by_key]
            valid_all = np.asarray(
                pc.and_(pc.is_valid(ids), pc.not_equal(pc.fill_null(ids, ""), "")).to_numpy(zero_copy_only=False),
                dtype=bool,
            )
            bounds = np.searchsorted(item_key, np.arange(len(key_names) + 1))
            for k, name in enumerate(key_names):
                lo, hi = int(bounds[k]), int(bounds[k + 1])
                if lo == hi or name is None:
                    continue
                valid = valid_all[lo:hi]
                all_valid = bool(valid.all())
                keep = None if all_valid else pa.array(valid)
                ids_k, auth_k = ids.slice(lo, hi - lo), auth.slice(lo, hi - lo)
                ids_kept = ids_k if all_valid else ids_k.filter(keep)
                cnt = len(ids_kept)
                rows = np.arange(self.occ, self.occ + cnt, dtype=index_dtype(self.occ + cnt))
                code = self.ns_codes.setdefault(name, len(self.ns_codes))
                if code == len(self.ns_ids):
                    self.ns_ids.append([])
                    self.ns_rows.append([])
                if self.spill is None:
                    self.ns_ids[code].append(ids_kept)
                    self.ns_rows[code].append(rows)
                else:
                    self.spill.add(name, self.side, rows, ids_kept)
                par = parents[lo:hi][valid]
                self.id_record.append((par + self.base).astype(np.int32))
                if auth_k.null_count == len(auth_k):
                    self.id_auth.append(np.full(cnt, -1, dtype=np.int8))
                else:
                    self.id_auth.append(self.auth.encode(auth_k if all_valid else auth_k.filter(keep), np.int8))
                rec_parts.append(par)
                pos_parts.append(pos[lo:hi][valid])
                prim_parts.append(primary_np[lo:hi][valid])
                self.occ += cnt
        out = np.full(n, -1, dtype=index_dtype(self.occ))
        if rec_parts:
            rec, pos, prim = np.concatenate(rec_parts), np.concatenate(pos_parts), np.concatenate(prim_parts)
            occ = np.arange(self.occ - len(rec), self.occ, dtype=np.int64)
            order = lexsort((pos, (~prim).astype(np.int8), rec))
            rec_sorted = rec[order]
            first = np.flatnonzero(np.r_[True, rec_sorted[1:] != rec_sorted[:-1]])
            out[rec_sorted[first]] = occ[order[first]]
        return out

    def finish(self) -> Records:
        def cat(key, dtype=None):
            parts = self.parts.pop(key)  # let go of the pieces as soon as they are one array
            if not parts:
                return np.zeros(0, dtype=dtype or np.int64)
            return np.concatenate(parts) if dtype is None else np.concatenate(parts).astype(dtype, copy=False)

        _, batch_rank = self.batches.sorted_ranks()
        batch = batch_rank[cat("batch", np.int32)] if self.base else np.zeros(0, dtype=np.int64)
        ingest = cat("ingest", np.int64)
        # Record order as one rank: later ingest wins, then batch id, then row number; the file path only
        # separates byte-identical keys so the result stays deterministic.
        order = np.empty(self.base, dtype=index_dtype(self.base))
        order[_record_order(ingest, batch, cat("row"), cat("file", np.int32))] = np.arange(self.base, dtype=order.dtype)
        del batch
        # Namespaces in name order, so that node numbers follow (namespace, id) text order.
        names = sorted(self.ns_codes, key=lambda s: s)
        old = [self.ns_codes[s] for s in names]
        auth_values = [None] * len(self.auth.codes)
        for v, c in self.auth.codes.items():
            auth_values[c] = v
        record = np.concatenate(self.id_record) if self.id_record else np.zeros(0, dtype=np.int32)
        return Records(
            n=self.base,
            dataset_ids=self.fs.dataset_ids,
            dataset=cat("dataset", np.int32),
            ingest_ms=ingest,
            order=order,
            time_ms=cat("time", np.int64),
            identities=IdentityRows(
                record=record,
                node=np.full(len(record), -1, dtype=np.int32),
                auth=np.concatenate(self.id_auth) if self.id_auth else np.zeros(0, dtype=np.int8),
            ),
            primary_occ=cat("primary", index_dtype(self.occ)),
            namespaces=names,
            ns_ids=[self.ns_ids[c] for c in old],
            ns_rows=[self.ns_rows[c] for c in old],
            auth_values=auth_values,
        )


def load_records(
    fs: FileSet,
    *,
    with_leaves: bool,
    check: Callable[[], None] = lambda: None,
    spill: TextSpill | None = None,
    side: int = 0,
) -> Records:
    """Read every file of the file set: the index (system columns, identities) and, with_leaves, every
    leaf column in the same pass; without, only the few columns the index needs. With a spill, the ids go
    to the spill's file, marked with `side` (textsort.py). The leaves cover the merged records only (the
    first fs.merged_n): linking files are read for their index alone."""
    builder = _IndexBuilder(fs, spill, side)
    chunks: dict[Path, list[pa.Array]] = {p: [] for p in fs.types} if with_leaves else {}
    for i in range(len(fs.files)):
        leaves = with_leaves and i < fs.merged_files
        cols = fs.columns[i] if leaves and fs.types else fs.index_columns(i)
        table = fs.read(i, cols)
        builder.add(i, table)
        if leaves:
            for p, arr in file_leaves(table, fs).items():
                chunks[p].append(arr)
        del table
        check()
    records = builder.finish()
    if with_leaves:
        # Chunked, not concatenated: the merge scans chunks as they are, so the leaves are never copied.
        records.leaves = {p: pa.chunked_array(c, fs.types[p]) for p, c in chunks.items()}
    return records
