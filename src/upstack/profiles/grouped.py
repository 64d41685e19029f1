"""Exports split by identity-graph component (the profile store's), instead of by a whole-lake stitch.

A big export is merged in parts to bound memory. Without the profile store, finding the parts needs the whole
lake's identity graph first (engine.py: read every identity, number them all, connected components, then
route). The store already knows each record's component (`services/profile_store.export_components`), so
here the records are routed by it: every file is read once and its rows are written to the temp file of
their *group* (components hashed onto `groups` groups), and each group is then merged alone by the ordinary
engine. A component never spans two groups, so a group's profiles are exactly the rows a whole-lake merge
gives for them (tests/profiles/test_grouped.py, tests/test_profile_store.py).

What this changes: no stage ever holds the whole lake's identities (a group's are numbered in memory, never
spilled), connected components run per group on a small graph, and memory follows the group, not the lake.
What it does not: rows come group by group, each group's in anchor order, not the whole export in anchor
order (an export's row order is not part of the contract).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .model import DatasetInput, ExportCancelled, MergeResultPart

FLUSH_ROWS = 65_536  # rows a group buffers from one file before they are written
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def group_of(components: np.ndarray, groups: int) -> np.ndarray:
    """The group of each record from its component (-1: a record without identities, which joins no other
    and goes by its position): a multiplicative hash, so groups hold about the same number of records
    whatever the component numbers."""
    comp = components.astype(np.int64, copy=False)
    mixed = (comp.astype(np.uint64) * _GOLDEN) >> np.uint64(33)
    out = (mixed % np.uint64(groups)).astype(np.int32)
    loose = comp < 0
    if loose.any():
        out[loose] = (np.flatnonzero(loose) % groups).astype(np.int32)
    return out


def route_groups(
    inputs: Sequence[DatasetInput],
    components: Mapping[str, np.ndarray],
    groups: int,
    work_dir: str,
    check: Callable[[], None],
) -> list[list[DatasetInput]]:
    """Write every row of the inputs' files to its group's copy of the file; the inputs of each group.

    A copy keeps its file's schema, system columns and rows in order, and copies are named so that they sort
    as their originals do within the dataset (the engine's canonical file order and record-order ties). A
    group without rows of a file gets an empty copy (one, shared by those groups): the merged types and so
    the output schema come from the files' schemas, and every group must give the same."""
    per_group: list[dict[str, list[str]]] = [{} for _ in range(groups)]
    for d_i, d in enumerate(sorted(inputs, key=lambda d: d.dataset_id)):
        for f_i, path in enumerate(sorted(d.files)):
            check()
            pf = pq.ParquetFile(path)
            comp = components.get(path)
            if comp is None or len(comp) != pf.metadata.num_rows:
                raise ValueError(f"no component for every row of {path}")
            stem = os.path.join(work_dir, f"{d_i:04d}-{f_i:06d}")
            written = _route_file(pf, group_of(comp, groups), stem, groups)
            if len(written) < groups:
                written = {k: written.get(k, f"{stem}.empty.parquet") for k in range(groups)}
                pq.write_table(pf.schema_arrow.empty_table(), f"{stem}.empty.parquet")
            for k, copy in written.items():
                per_group[k].setdefault(d.dataset_id, []).append(copy)
    kinds = {d.dataset_id: d.kind for d in inputs}
    return [[DatasetInput(ds, kinds[ds], tuple(files)) for ds, files in sorted(g.items())] for g in per_group]


def _route_file(pf: pq.ParquetFile, group: np.ndarray, stem: str, groups: int) -> dict[int, str]:
    writers: dict[int, pq.ParquetWriter] = {}
    buffered: dict[int, list[pa.Table]] = {}
    counts: dict[int, int] = {}

    def flush(k: int) -> None:
        if k not in writers:
            writers[k] = pq.ParquetWriter(f"{stem}.g{k}.parquet", pf.schema_arrow, compression="none",
                                          use_dictionary=False, write_statistics=False)
        writers[k].write_table(pa.concat_tables(buffered.pop(k)))
        counts[k] = 0

    try:
        base = 0
        for rg in range(pf.metadata.num_row_groups):
            table = pf.read_row_group(rg)
            g = group[base : base + table.num_rows]
            base += table.num_rows
            order = np.argsort(g, kind="stable")
            cuts = np.searchsorted(g[order], np.arange(groups + 1))
            sorted_table = table.take(pa.array(order, pa.int64()))
            for k in np.flatnonzero(np.diff(cuts)).tolist():
                buffered.setdefault(k, []).append(sorted_table.slice(cuts[k], cuts[k + 1] - cuts[k]))
                counts[k] = counts.get(k, 0) + int(cuts[k + 1] - cuts[k])
                if counts[k] >= FLUSH_ROWS:
                    flush(k)
        for k in list(buffered):
            flush(k)
    finally:
        for w in writers.values():
            w.close()
    return {k: f"{stem}.g{k}.parquet" for k in writers}


def iter_merge_groups(
    group_inputs: list[list[DatasetInput]],
    merge: Callable[[list[DatasetInput]], Iterator[MergeResultPart]],
    check: Callable[[], None],
) -> Iterator[MergeResultPart]:
    """Merge each group alone (`merge`, the ordinary engine over the group's copies) and yield its parts
    numbered as one export's; the counters add up, so the last part carries the whole export's. The next
    group is merged while the caller writes one (DuckDB and the Parquet writer release the GIL)."""
    todo = [g for g in group_inputs if any(not p.endswith(".empty.parquet") for d in g for p in d.files)]
    if not todo:
        yield from merge(group_inputs[0] if group_inputs else [])
        return
    totals = [0, 0, 0]  # excluded components, fragments read, events read

    def build(k: int) -> list[MergeResultPart]:
        try:
            return list(merge(todo[k]))
        finally:
            for d in todo[k]:
                for path in d.files:
                    if not path.endswith(".empty.parquet"):  # shared by the groups; go with the work dir
                        os.remove(path)

    # A part is yielded once the next is known, so that only the last says it is the last (part == parts - 1).
    pending: MergeResultPart | None = None
    index = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upstack-group") as pool:
        ahead = pool.submit(build, 0)
        for k in range(len(todo)):
            parts = ahead.result()
            if k + 1 < len(todo):
                ahead = pool.submit(build, k + 1)
            check()
            # A group's parts each carry the group's counters (engine.py): add them once per group.
            totals[0] += parts[-1].excluded_components
            totals[1] += parts[-1].fragments_read
            totals[2] += parts[-1].events_read
            for part in parts:
                if pending is not None:
                    yield replace(pending, parts=index + 1)
                pending = replace(part, part=index, excluded_components=totals[0], fragments_read=totals[1],
                                  events_read=totals[2])
                index += 1
            del parts
    if pending is not None:
        yield replace(pending, parts=index)


def grouped_export(
    inputs: Sequence[DatasetInput],
    components: Mapping[str, np.ndarray],
    groups: int,
    merge: Callable[[list[DatasetInput]], Iterator[MergeResultPart]],
    should_cancel: Callable[[], bool] | None,
    temp_dir: str | None,
) -> Iterator[MergeResultPart]:
    """Route the inputs into `groups` groups by component, then merge them one by one."""

    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise ExportCancelled("export cancelled")

    if temp_dir:
        os.makedirs(temp_dir, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix="upstack-groups-", dir=temp_dir or None)
    try:
        group_inputs = route_groups(inputs, components, groups, work_dir, check)
        yield from iter_merge_groups(group_inputs, merge, check)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
