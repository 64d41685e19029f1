"""Bounded memory: choose how many parts an export is merged in, and route rows into per-part temp files.

Parts are contiguous ranges of output rows (profiles in anchor order), so concatenating the parts in
order gives exactly the rows of a single-part merge, and each part's working set is about
`budget / parts`. Pass 2 streams every input file by row group and appends each row to its part's
temp file (Arrow IPC) under the temp directory; pass 3 reads one part at a time.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa

from .load import FileSet, Path, file_leaves, iter_leaf_batches

DEFAULT_BUDGET = 1_500_000_000
# The merge of one part holds its fragments table, DuckDB's aggregate state, the merged leaves and the
# rebuilt output columns at once, and the next part is merged while the caller writes one: about this many
# times the part's leaf bytes for the two (measured at 5M and 20M).
WORKING_SET_FACTOR = 16
EVENT_INDEX = "event_idx"
# The in-memory identity numbering holds the occurrences' ids, DuckDB's sort of them and the distinct ids:
# about this many times the ids' bytes in the Parquet footers on top of the rest of pass 1 (measured: at 5M,
# 0.54 GB of ids, numbering took the process from 1.7 to 2.5 GB; at 20M, 2.2 GB of ids, to 9.3 GB).
TEXT_WORKING_SET_FACTOR = 2.5

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'2GB', '512MiB', '1.5 GB' -> bytes (DuckDB's memory_limit spelling)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def resolve_budget(memory_budget_bytes: int | None, memory_limit: str | None) -> int:
    """The caller's budget; else most of DuckDB's memory_limit (the rest is the index of pass 1); else
    UPSTACK_ENGINE_MEMORY_BUDGET; else 1.5 GB."""
    if memory_budget_bytes is not None:
        return max(1, int(memory_budget_bytes))
    if memory_limit:
        return max(1, int(parse_bytes(memory_limit) * 0.75))
    env = os.environ.get("UPSTACK_ENGINE_MEMORY_BUDGET")
    return parse_bytes(env) if env else DEFAULT_BUDGET


def wants_spilled_identities(identity_text_bytes: int, budget: int) -> bool:
    """Number identities by an external sort (textsort.py) when the in-memory numbering, which holds and
    sorts every identity occurrence's text, would not fit the budget."""
    return identity_text_bytes * TEXT_WORKING_SET_FACTOR > budget


def identity_sort_memory(budget: int) -> str:
    """DuckDB's memory_limit for the external sort of the identity texts."""
    return f"{max(budget // 2, 64 * 2**20) // 2**20}MiB"


def part_count(leaf_bytes: int, budget: int) -> int:
    return max(1, math.ceil(leaf_bytes * WORKING_SET_FACTOR / budget))


def part_bounds(frag_row: np.ndarray, events_row: np.ndarray | None, n_rows: int, parts: int) -> list[tuple[int, int]]:
    """Split output rows [0, n_rows) into at most `parts` contiguous ranges holding about the same number
    of records (fragments, plus events when they are exported)."""
    if parts <= 1 or n_rows <= 1:
        return [(0, n_rows)]
    weight = np.bincount(frag_row[frag_row >= 0], minlength=n_rows).astype(np.int64) + 1
    if events_row is not None:
        weight += np.bincount(events_row[events_row >= 0], minlength=n_rows)
    cum = np.cumsum(weight)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, parts) / parts, side="right")
    edges = np.unique(np.r_[0, cuts, n_rows])
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


class PartWriter:
    """One Arrow IPC file per part, opened on first use, appended to batch by batch. Temp files are written
    once and read once: IPC costs about a copy each way, where Parquet spent most of pass 2 encoding."""

    def __init__(self, directory: str, prefix: str, schema: pa.Schema):
        self.directory, self.prefix, self.schema = directory, prefix, schema
        self.writers: dict[int, tuple[pa.OSFile, pa.ipc.RecordBatchFileWriter]] = {}

    def path(self, k: int) -> str:
        return os.path.join(self.directory, f"{self.prefix}-{k:05d}.arrow")

    def write(self, k: int, table: pa.Table) -> None:
        pair = self.writers.get(k)
        if pair is None:
            sink = pa.OSFile(self.path(k), "wb")
            pair = self.writers[k] = (sink, pa.ipc.new_file(sink, self.schema))
        pair[1].write_table(table)

    def close(self) -> None:
        for sink, writer in self.writers.values():
            writer.close()
            sink.close()
        self.writers.clear()

    def read(self, k: int) -> pa.Table:
        """The part's rows, and the file is gone."""
        path = self.path(k)
        if not os.path.exists(path):
            return self.schema.empty_table()
        with pa.OSFile(path, "rb") as source:
            table = pa.ipc.open_file(source).read_all()
        os.remove(path)
        return table


def write_by_part(writer: PartWriter, part: np.ndarray, columns: Callable[[np.ndarray], Iterable[pa.Array]]) -> None:
    """Append every row i with part[i] >= 0, given as the arrays columns(indices i), to its part's file;
    rows keep their index order within a part."""
    order = np.argsort(part, kind="stable")
    order = order[part[order] >= 0]
    if not len(order):
        return
    sorted_part = part[order]
    starts = np.flatnonzero(np.r_[True, sorted_part[1:] != sorted_part[:-1]])
    ends = np.r_[starts[1:], len(order)]
    arrays = list(columns(order))
    for s, e in zip(starts, ends, strict=True):
        writer.write(int(sorted_part[s]), pa.Table.from_arrays([a.slice(s, e - s) for a in arrays], schema=writer.schema))


def route_arrays(part: np.ndarray, writer: PartWriter, columns: Callable[[np.ndarray], Iterable[pa.Array]]) -> None:
    """write_by_part for rows held in memory, a slice at a time (columns gets global row indices)."""
    step = 1 << 22
    for lo in range(0, len(part), step):
        write_by_part(writer, part[lo : lo + step], lambda idx, lo=lo: columns(lo + idx))


def route(
    fs: FileSet,
    part_of_record: np.ndarray,
    writer: PartWriter,
    columns: Callable[[np.ndarray], Iterable[pa.Array]],
    check: Callable[[], None],
) -> None:
    """Pass 2: stream the files of `fs` and append each record with a part (>= 0) to that part's file, as
    the columns `columns(record indices)` gives followed by its leaves in the file set's path order."""
    paths: list[Path] = list(fs.types)
    for base, table in iter_leaf_batches(fs, check):
        part = part_of_record[base : base + table.num_rows]

        def arrays(idx: np.ndarray, base: int = base, table: pa.Table = table) -> list[pa.Array]:
            leaves = file_leaves(table, fs, idx)
            return list(columns(base + idx)) + [leaves[p] for p in paths]

        write_by_part(writer, part, arrays)
        del table
