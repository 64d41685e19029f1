"""Profile snapshots: every merged profile of one lake version as Parquet, found by identity in one row group read.

A snapshot directory holds:

    profiles-00000.parquet ...  the merged profiles, part after part, in small row groups, with three meta
                                columns (profile id, sources, last modified) beside the XDM columns
    identities.parquet          (ns, id, row) sorted by (ns, id) in small row groups: every identity of every
                                profile, pointing at the profile a lookup of that identity answers
    snapshot.json               the manifest, written last: row counts, the first key of each index row group
                                (the fences a probe bisects), and what the caller says the snapshot is of

A probe bisects the fences in memory, reads one index row group, then one row group of one profiles file.
Open snapshots (footers and fences) are kept in a small LRU, so a probe after the first opens nothing big.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from upstack import identitymap
from upstack.lake.parquet import parquet_safe

MANIFEST = "snapshot.json"
INDEX = "identities.parquet"
_UNSORTED = "identities-unsorted.parquet"
FORMAT = 2  # 2: identityMap stored as the lake's map (1: a struct per namespace)
# Small row groups keep a probe's read small: one index group of 8k keys, one profile group of 2k rows.
PROFILE_ROW_GROUP = 2048
INDEX_ROW_GROUP = 8192
PROFILE_ID, SOURCES, LAST_MODIFIED = "__profile_id", "__sources", "__last_modified_ms"
META_COLUMNS = (PROFILE_ID, SOURCES, LAST_MODIFIED)
_ROW_BITS = 40  # a row number fits 40 bits (10^12 profiles); the bit above says "not the profile's own identity"
_INDEX_SCHEMA = pa.schema([("ns", pa.string()), ("id", pa.string()), ("prio", pa.int64())])


@dataclass(frozen=True)
class SnapshotRow:
    """One profile of a snapshot: the export row's XDM object and its meta."""

    profile_id: str
    sources: list[str]
    last_modified_ms: int | None
    entity: dict[str, Any]


# ---- writing -------------------------------------------------------------------------------------------

class SnapshotWriter:
    """Writes a snapshot into an empty directory part by part (memory: one part plus the identity sort, which
    DuckDB spills under `memory_limit`), then `finish` sorts the index and writes the manifest."""

    def __init__(self, directory: Path, *, temp_dir: str | None = None, memory_limit: str | None = None):
        self.dir = Path(directory)
        self.temp_dir, self.memory_limit = temp_dir, memory_limit
        self.rows = 0
        self.files: list[dict[str, Any]] = []
        self._ids = pq.ParquetWriter(self.dir / _UNSORTED, _INDEX_SCHEMA, compression="zstd", compression_level=1)

    def add(self, profiles: pa.Table, meta: pa.Table) -> None:
        """One part of the export (`MergeResultPart.profiles` and `.meta`): its rows follow the previous part's."""
        n = profiles.num_rows
        if n == 0:
            return
        table = parquet_safe(profiles)
        for name, col in ((PROFILE_ID, meta.column("profile_id")), (SOURCES, meta.column("sources")),
                          (LAST_MODIFIED, meta.column("last_modified_ms"))):
            table = table.append_column(name, col)
        name = f"profiles-{len(self.files):05d}.parquet"
        pq.write_table(table, self.dir / name, compression="zstd", compression_level=1,
                       row_group_size=PROFILE_ROW_GROUP)
        self.files.append({"name": name, "rows": n})
        self._ids.write_table(_identity_rows(profiles, meta, self.rows))
        self.rows += n

    def finish(self, info: dict[str, Any]) -> dict[str, Any]:
        """Sort the identities into the index, write the manifest (with `info`), return it."""
        self._ids.close()
        unsorted = self.dir / _UNSORTED
        con = duckdb.connect()
        try:
            if self.memory_limit:
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
            if self.temp_dir:
                con.execute(f"SET temp_directory = '{_sql_text(self.temp_dir)}'")
            # Under `none` an identity can be listed by several profiles: a lookup answers the profile whose own
            # identity it is, else the first (smallest) profile listing it; min(prio) picks exactly that.
            con.execute(f"""
                COPY (SELECT ns, id, min(prio) & {(1 << _ROW_BITS) - 1} AS row
                      FROM read_parquet('{_sql_text(str(unsorted))}') GROUP BY ns, id ORDER BY ns, id)
                TO '{_sql_text(str(self.dir / INDEX))}'
                (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {INDEX_ROW_GROUP})""")
        finally:
            con.close()
        unsorted.unlink()
        index = pq.ParquetFile(self.dir / INDEX)
        fences = []
        for g in range(index.metadata.num_row_groups):
            first = index.read_row_group(g, columns=["ns", "id"]).slice(0, 1).to_pylist()
            if first:
                fences.append([first[0]["ns"], first[0]["id"]])
        manifest = dict(info, format=FORMAT, rows=self.rows, files=self.files,
                        index={"file": INDEX, "rows": index.metadata.num_rows, "fences": fences})
        tmp = self.dir / f"{MANIFEST}.tmp"
        tmp.write_bytes(json.dumps(manifest, separators=(",", ":")).encode())
        os.replace(tmp, self.dir / MANIFEST)
        return manifest

    def close(self) -> None:
        """Release the open index writer (after a failure; `finish` closes it too)."""
        if self._ids.is_open:
            self._ids.close()


def _identity_rows(profiles: pa.Table, meta: pa.Table, first_row: int) -> pa.Table:
    """(ns, id, prio) for every identity of every profile; prio = row, plus 2^40 unless it is the profile's
    own identity (meta entity_ns/entity_id: its representative, which under `none` is its key)."""
    if "identityMap" not in profiles.column_names or profiles.num_rows == 0:
        return _INDEX_SCHEMA.empty_table()
    entry_row, keys, lists = identitymap.entries(profiles.column("identityMap"))
    entry, ids, _auth, _primary = identitymap.item_fields(lists)
    parents = pa.array(entry_row[entry], pa.int64())
    ns = keys.take(pa.array(entry, pa.int64()))
    own_ns = meta.column("entity_ns").combine_chunks().cast(pa.string())
    own_id = meta.column("entity_id").combine_chunks().cast(pa.string())
    own = pc.and_(pc.equal(ids, own_id.take(parents)), pc.equal(ns, own_ns.take(parents)))
    rows = parents.to_numpy(zero_copy_only=False).astype(np.int64) + first_row
    not_own = ~np.asarray(pc.fill_null(own, False).to_numpy(zero_copy_only=False), dtype=bool)
    prio = rows + (not_own.astype(np.int64) << _ROW_BITS)
    table = pa.table({"ns": ns, "id": ids, "prio": pa.array(prio, pa.int64())}, schema=_INDEX_SCHEMA)
    return table.filter(pc.is_valid(table.column("id")))


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


# ---- reading -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _File:
    path: Path
    first_row: int
    group_starts: np.ndarray  # first row (snapshot-wide) of each row group
    metadata: pq.FileMetaData


class Snapshot:
    """An opened snapshot: its manifest, index fences and Parquet footers; reads are thread-safe (each opens
    its own file handle, reusing the parsed footer)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_bytes())
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{self.path}: snapshot format {self.manifest.get('format')} is not {FORMAT}")
        self.fences = [tuple(f) for f in self.manifest["index"]["fences"]]
        self._index_path = self.path / self.manifest["index"]["file"]
        self._index_meta = pq.read_metadata(self._index_path)
        self._files: list[_File] = []
        first = 0
        for f in self.manifest["files"]:
            path = self.path / f["name"]
            md = pq.read_metadata(path)
            sizes = [md.row_group(g).num_rows for g in range(md.num_row_groups)]
            starts = first + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            self._files.append(_File(path, first, starts, md))
            first += md.num_rows
        self._file_starts = [f.first_row for f in self._files]

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])

    def find(self, ns: str, ident: str) -> int | None:
        """The snapshot row a lookup of (ns, ident) answers, or None when no profile has that identity."""
        g = bisect.bisect_right(self.fences, (ns, ident)) - 1
        if g < 0:
            return None
        group = pq.ParquetFile(self._index_path, metadata=self._index_meta).read_row_group(g)
        hit = pc.and_(pc.equal(group.column("ns"), ns), pc.equal(group.column("id"), ident))
        at = pc.indices_nonzero(hit)
        return int(group.column("row")[at[0].as_py()].as_py()) if len(at) else None

    def row(self, n: int) -> SnapshotRow:
        f = self._files[bisect.bisect_right(self._file_starts, n) - 1]
        g = int(np.searchsorted(f.group_starts, n, side="right")) - 1
        group = pq.ParquetFile(f.path, metadata=f.metadata).read_row_group(g)
        (rec,) = group.slice(n - int(f.group_starts[g]), 1).to_pylist(maps_as_pydicts="lossy")
        meta = [rec.pop(c) for c in META_COLUMNS]
        return SnapshotRow(meta[0], list(meta[1] or []), meta[2], rec)

    def probe(self, ns: str, ident: str) -> SnapshotRow | None:
        n = self.find(ns, ident)
        return None if n is None else self.row(n)


class _Cache:
    """The most recently used open snapshots by path (a published snapshot never changes, only disappears)."""

    def __init__(self, size: int):
        self.size = size
        self._open: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Snapshot:
        key = str(path)
        with self._lock:
            snap = self._open.get(key)
            if snap is not None:
                self._open.move_to_end(key)
                return snap
        snap = Snapshot(path)  # outside the lock: opening reads footers
        with self._lock:
            self._open[key] = snap
            self._open.move_to_end(key)
            while len(self._open) > self.size:
                self._open.popitem(last=False)
        return snap

    def forget(self, path: Path) -> None:
        with self._lock:
            self._open.pop(str(path), None)


_cache = _Cache(16)


def is_complete(path: Path) -> bool:
    """Whether `path` is a finished snapshot (the manifest is written last)."""
    return (Path(path) / MANIFEST).is_file()


def open_snapshot(path: Path) -> Snapshot:
    """The snapshot at `path`, opened once per process while it stays among the recently used."""
    return _cache.get(path)


def forget(path: Path) -> None:
    """Drop a cached snapshot (its files were removed)."""
    _cache.forget(path)
