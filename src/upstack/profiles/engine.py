"""Orchestrates an export or a lookup: plan the files, stitch identities, then merge, attach events, filter
and project one part of the profiles at a time (see README.md)."""

from __future__ import annotations

import ctypes
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from . import events as ev
from .assemble import EVENT_SYSTEM, Export, PartEvents, build_part, prepare
from .engines import engine_name, open_backend
from .filters import SEGMENTS, split_mask
from .grouped import grouped_export
from .load import IDENTITY_ARRAYS, FileSet, Selector, file_leaves, file_set, index_arrays, iter_leaf_batches
from .merge import IDENTITY_ROWS, Backend, MergePlan
from .model import (
    DatasetInput,
    ExportCancelled,
    ExportQuery,
    MergePolicySpec,
    MergeResult,
    MergeResultPart,
    SegmentFilter,
)
from .park import parked
from .partition import (
    EVENT_INDEX,
    PartWriter,
    identity_sort_memory,
    part_bounds,
    part_count,
    resolve_budget,
    route,
    route_arrays,
    wants_spilled_identities,
)
from .stitch import linking_inputs, profile_inputs, select_anchors, stitch
from .textsort import PART_TEXT_SCHEMA, NodeTexts, TextSpill, route_node_texts

NO_FIELDS = Selector(())
# Groups per part the whole-lake estimate asks for: groups by component hash are about even, not exactly, and
# a group over its budget would be split again by its own merge.
GROUP_MARGIN = 1.25
EVENT_ALWAYS = ("_id", "timestamp")
log = logging.getLogger("upstack.profiles")


def _load_trim() -> Callable[[], object] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_malloc_trim = _load_trim()


def _trim_heap() -> None:
    """Return the C heap's free pages to the system: numpy arrays freed by a stage otherwise stay resident
    (glibc keeps arrays below its adaptive mmap threshold in the heap)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class _Stages:
    """Debug log of each stage's duration (the scale checks read it to place time and memory)."""

    def __init__(self) -> None:
        self.mark = time.perf_counter()

    def __call__(self, name: str) -> None:
        pa.default_memory_pool().release_unused()  # hand freed buffers back before the next stage grows
        _trim_heap()
        now = time.perf_counter()
        log.debug("engine stage done", extra={"stage": name, "duration_ms": round((now - self.mark) * 1000, 3),
                                              "arrow_bytes": pa.total_allocated_bytes()})
        self.mark = now


def _checkpoint(should_cancel: Callable[[], bool] | None) -> Callable[[], None]:
    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise ExportCancelled("export cancelled")

    return check


def iter_merge_profiles(
    inputs: Sequence[DatasetInput],
    policy: MergePolicySpec,
    query: ExportQuery,
    *,
    should_cancel: Callable[[], bool] | None = None,
    temp_dir: str | None = None,
    memory_limit: str | None = None,
    memory_budget_bytes: int | None = None,
    engine: str | None = None,
    spark_master: str | None = None,
    spill_identities: bool | None = None,
    components: Callable[[], Mapping[str, np.ndarray] | None] | None = None,
) -> Iterator[MergeResultPart]:
    """Merge profiles of the lake files under `policy` and yield the rows `query` asks for, part by part,
    in memory about `memory_budget_bytes` (default: from memory_limit, else 1.5 GB).

    When the leaf columns fit the budget, everything is read once and merged as one part. Otherwise pass 1
    reads only identities and system columns, pass 2 streams the files into per-part temp Parquet files
    under `temp_dir`, and pass 3 merges one part at a time. `engine` ("duckdb" or "spark"; default
    UPSTACK_ENGINE, else duckdb) runs the connected components and the merge SQL; `spark_master` (default
    UPSTACK_SPARK_MASTER, else local[2]) is the Spark cluster. Identities are numbered by an external
    sort (textsort.py) when their text would not fit the budget; `spill_identities` forces either way.
    `components`, when given, is asked only if the export needs more than one part and its identities would
    not fit the budget in memory: the identity-graph component of every row of every input file (the profile
    store's), or None; with it the parts are groups of components merged alone (grouped.py) rather than ranges
    of a whole-lake stitch (DuckDB only). Drop each
    part before asking for the next: the next one is built while a reference to the previous keeps it in memory.
    """
    check = _checkpoint(should_cancel)
    pdg = policy.identity_graph == "pdg"
    load_events = query.include_events or pdg or query.empty_profiles or query.identity is not None
    # segmentMembership is always merged: meta.segment_keys and the segment filters read it.
    frag_keep = Selector(query.fields, extra_prefixes=(SEGMENTS,))
    event_keep = Selector(query.event_fields, extra_prefixes=EVENT_ALWAYS) if query.include_events else NO_FIELDS
    frag_fs = file_set(profile_inputs(inputs, policy), "profile", frag_keep, skip_identity_map_leaves=True,
                       linking=linking_inputs(inputs, policy))
    event_inputs = [d for d in inputs if d.kind == "event"] if load_events else []
    event_fs = file_set(event_inputs, "event", event_keep, skip_identity_map_leaves=False)
    budget = resolve_budget(memory_budget_bytes, memory_limit)
    if frag_fs.is_small_selection() and event_fs.is_small_selection():
        # A component's rows (a lookup from the profile store): one part, nothing spilled, no estimates to read.
        leaf_bytes, parts, spilled = 0, 1, bool(spill_identities)
    else:
        leaf_bytes = frag_fs.estimate_leaf_bytes() + (event_fs.estimate_leaf_bytes() if query.include_events else 0)
        parts = part_count(leaf_bytes, budget)
        spilled = spill_identities
        if spilled is None:
            spilled = wants_spilled_identities(frag_fs.identity_text_bytes() + event_fs.identity_text_bytes(), budget)
    check()
    # By component only where it pays: copying every row to its group costs about what the whole-lake stitch
    # costs while the lake's identities fit the budget (1M: 13.4 s against 7.5 s); past that, the stitch has
    # to sort them on disk and park its arrays, which the groups never do (docs/PERFORMANCE.md).
    if (components is not None and parts > 1 and spilled and query.identity is None
            and engine_name(engine) == "duckdb"):
        needed = [*profile_inputs(inputs, policy), *linking_inputs(inputs, policy), *event_inputs]
        found = components()
        if found is not None and all(p in found for d in needed for p in d.files):
            records = sum(len(c) for c in found.values())
            groups = max(1, min(math.ceil(parts * GROUP_MARGIN), records))  # never more groups than records
            log.debug("merge planned by component", extra={"groups": groups, "leaf_bytes": leaf_bytes,
                                                           "budget_bytes": budget})
            yield from grouped_export(
                needed, found, groups,
                lambda group: iter_merge_profiles(
                    group, policy, query, temp_dir=temp_dir, memory_limit=memory_limit,
                    memory_budget_bytes=memory_budget_bytes, engine="duckdb", spill_identities=spill_identities),
                should_cancel, temp_dir)
            return

    # A lookup reads one profile: a Spark job per request would only add seconds, so UPSTACK_ENGINE applies
    # to exports; an explicit engine= still wins.
    engine = engine_name(engine if engine or query.identity is None else "duckdb")
    work_dir = None
    if parts > 1 or spilled or engine == "spark":  # Spark exchanges tables through files
        if temp_dir:
            os.makedirs(temp_dir, exist_ok=True)
        work_dir = tempfile.mkdtemp(prefix="upstack-merge-", dir=temp_dir or None)
    # Split exports cap DuckDB at the budget unless told otherwise: parts are sized so that their aggregate
    # fits it, and uncapped DuckDB keeps up to 80% of the machine in its buffer pool between parts.
    if memory_limit is None and parts > 1:
        memory_limit = f"{max(budget, 64 * 2**20) // 2**20}MiB"
    backend = open_backend(engine, temp_dir=temp_dir, memory_limit=memory_limit, work_dir=work_dir,
                           spark_master=spark_master)
    stage = _Stages()
    log.debug("merge planned", extra={"parts": parts, "leaf_bytes": leaf_bytes, "budget_bytes": budget,
                                      "identities_spilled": spilled, "engine": engine})
    try:
        park_dir = work_dir if spilled else None  # only big exports pay for parking (park.py)
        st = stitch(frag_fs, event_fs, policy, parts == 1 and not spilled, check, backend.components, stage,
                    spill=TextSpill(work_dir) if spilled else None, spill_memory_limit=identity_sort_memory(budget),
                    lookup=query.identity)
        plan = MergePlan.for_leaves(frag_fs.types)
        x = prepare(st, query, policy, plan, event_fs, park_dir)
        stage("prepare")
        n_rows = len(x.anchors)
        bounds = part_bounds(x.frag_row, x.event_row if query.include_events else None, n_rows, parts)
        if (parts == 1 or len(bounds) == 1) and not spilled:
            if parts > 1:  # everything fits one part after all: read the leaves now, in one pass
                st.frags.leaves = _read_all_leaves(frag_fs, check)
                if query.include_events:
                    st.events.leaves = _read_all_leaves(event_fs, check)
            def ev_leaves(sel: np.ndarray) -> dict:
                return {p: ev.whole(a.take(pa.array(sel, pa.int64()))) for p, a in st.events.leaves.items()}

            yield build_part(x, backend, 0, 1, 0, n_rows, lambda: x.fragments_in_memory(0, n_rows),
                             x.identity_rows(0, n_rows), x.part_events(0, n_rows, ev_leaves), st.nodes.texts(),
                             check, stage)
            return
        yield from _spilled_parts(x, backend, frag_fs, bounds, work_dir, park_dir, check, stage)
    finally:
        backend.close()
        if work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


def _read_all_leaves(fs: FileSet, check: Callable[[], None]) -> dict:
    chunks: dict = {p: [] for p in fs.types}
    for _, table in iter_leaf_batches(fs, check):
        for p, a in file_leaves(table, fs).items():
            chunks[p].append(a)
    return {p: pa.concat_arrays(c) if c else pa.nulls(0, fs.types[p]) for p, c in chunks.items()}


def _spilled_parts(
    x: Export,
    backend: Backend,
    frag_fs: FileSet,
    bounds: list[tuple[int, int]],
    work_dir: str,
    park_dir: str | None,
    check: Callable[[], None],
    stage: Callable[[str], None],
) -> Iterator[MergeResultPart]:
    """Pass 2 (route fragments, and events when exported, into per-part files) and pass 3 (one part at a
    time); with park_dir, what the routing of the fragments does not need waits on disk meanwhile."""
    parts = len(bounds)
    lo_of_part = np.asarray([lo for lo, _ in bounds], dtype=np.int64)
    his = np.asarray([hi for _, hi in bounds], dtype=np.int64)

    def part_of(rows: np.ndarray) -> np.ndarray:
        out = np.searchsorted(his, rows, side="right").astype(np.int32)
        return np.where(rows >= 0, out, -1)

    frag_part = part_of(x.frag_row)
    frag_writer = PartWriter(work_dir, "fragments", x.plan.fragment_schema)
    # Routing the fragments needs only their own arrays: the identity rows and the events wait on disk.
    idle = index_arrays(x.st.events) + [
        (x.st.frags.identities, IDENTITY_ARRAYS), (x, ("f_occ_row", "e_occ_row", "f_auth", "e_auth", "event_row")),
        (x.st, ("event_primary",)),
    ]
    try:
        with parked(park_dir, idle):
            route(frag_fs, frag_part, frag_writer, lambda idx: x.fragment_columns(idx, lo_of_part[frag_part[idx]]),
                  check)
    finally:
        frag_writer.close()
    x.release_fragments()
    stage("route fragments")
    text_writer = None
    if x.st.nodes.text_path is not None:
        text_writer = PartWriter(work_dir, "texts", PART_TEXT_SCHEMA)
        try:
            route_node_texts(x.st.nodes.text_path, *_node_parts(x, part_of, parts), text_writer.write, check)
        finally:
            text_writer.close()
        os.remove(x.st.nodes.text_path)
        stage("route node texts")
    # The identity rows and the events' system columns are in memory: to part files too, so that the parts
    # need none of pass 1's per-record arrays.
    id_writer = PartWriter(work_dir, "identities", IDENTITY_ROWS)
    evsys_writer = PartWriter(work_dir, "event-system", EVENT_SYSTEM)
    try:
        for kind, occ_row in (("fragments", x.f_occ_row), ("events", x.e_occ_row)):
            route_arrays(part_of(occ_row), id_writer,
                         lambda idx, kind=kind, occ_row=occ_row: x.identity_row_columns(
                             kind, idx, lo_of_part[part_of(occ_row[idx])]))
        route_arrays(part_of(x.event_row), evsys_writer,
                     lambda idx: x.event_system_columns(idx, lo_of_part[part_of(x.event_row[idx])]))
    finally:
        id_writer.close()
        evsys_writer.close()
    stage("route identity rows")
    ev_writer = None
    if x.query.include_events:
        ev_fs = x.event_fs
        ev_schema = pa.schema(
            [(EVENT_INDEX, pa.int64())] + [pa.field(f"e{i}", t) for i, t in enumerate(ev_fs.types.values())]
        )
        ev_writer = PartWriter(work_dir, "events", ev_schema)
        try:
            route(ev_fs, part_of(x.event_row), ev_writer, lambda idx: [pa.array(idx, pa.int64())], check)
        finally:
            ev_writer.close()
    x.release()
    check()
    stage("route events")

    def texts(k: int) -> NodeTexts:
        if text_writer is None:
            return x.st.nodes.texts()
        table = text_writer.read(k)
        return NodeTexts(table.column(1).combine_chunks(), table.column(0).to_numpy())

    def build(k: int) -> MergeResultPart:
        lo, hi = bounds[k]
        system = evsys_writer.read(k)
        leaves: dict = {}
        if ev_writer is not None:
            table = ev_writer.read(k)
            if not table.column(EVENT_INDEX).equals(system.column(EVENT_INDEX)):
                raise AssertionError("event part file out of step with the index")
            leaves = {p: table.column(i + 1).combine_chunks() for i, p in enumerate(x.event_fs.types)}
        events = PartEvents.from_columns(x.st.events.dataset_ids, system, leaves)
        # should_cancel is the caller's and may not be thread-safe: it is polled here, between parts.
        return build_part(
            x, backend, k, parts, lo, hi, lambda: frag_writer.read(k), id_writer.read(k), events, texts(k),
            lambda: None, stage,
        )

    # One part ahead: while the caller writes part k, part k+1 is merged (DuckDB and the Parquet writer
    # both release the GIL), at the cost of holding two parts.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upstack-part") as pool:
        ahead = pool.submit(build, 0)
        for k in range(parts):
            part = ahead.result()
            if k + 1 < parts:
                ahead = pool.submit(build, k + 1)
            check()
            yield part
            del part


def _node_parts(
    x: Export, part_of: Callable[[np.ndarray], np.ndarray], parts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which parts need the text of which node: every identity of a part's profiles, and their anchors.
    One part per node (part_of_node, -1 for none), plus (node, part) pairs sorted by node for the nodes
    several parts need (graph `none`: one secondary identity in several profiles)."""
    ids = (
        (x.f_occ_row, x.st.frags.identities.node),
        (x.e_occ_row, x.st.events.identities.node),
        (np.arange(len(x.anchors), dtype=np.int64), x.anchors),
    )
    step = 1 << 23

    def chunks():
        for rows, node in ids:
            for lo in range(0, len(rows), step):
                r = rows[lo : lo + step]
                ok = r >= 0
                yield node[lo : lo + step][ok], part_of(r[ok])

    part_of_node = np.full(x.st.nodes.count, -1, dtype=np.int32)
    for node, part in chunks():
        part_of_node[node] = part
    extra = [node[d].astype(np.int64) * parts + part[d] for node, part in chunks() if (d := part_of_node[node] != part).any()]
    keys = np.unique(np.concatenate(extra)) if extra else np.zeros(0, dtype=np.int64)
    return part_of_node, keys // parts, keys % parts


def merge_profiles(
    inputs: Sequence[DatasetInput], policy: MergePolicySpec, query: ExportQuery, **options: Any
) -> MergeResult:
    """Merge profiles of the lake files under `policy` and return all the rows `query` asks for at once
    (the parts of iter_merge_profiles, concatenated: for lookups, tests and small exports). `options` are
    iter_merge_profiles' keyword options."""
    parts = list(iter_merge_profiles(inputs, policy, query, **options))
    by_namespace: dict[str, int] = {}
    for p in parts:
        for ns, c in p.by_namespace.items():
            by_namespace[ns] = by_namespace.get(ns, 0) + c
    first = parts[0]
    return MergeResult(
        profiles=pa.concat_tables([p.profiles for p in parts]) if len(parts) > 1 else first.profiles,
        meta=pa.concat_tables([p.meta for p in parts]) if len(parts) > 1 else first.meta,
        excluded_components=parts[-1].excluded_components,
        by_namespace=dict(sorted(by_namespace.items())),
        fragments_read=parts[-1].fragments_read,
        events_read=parts[-1].events_read,
    )


def profile_events(
    inputs: Sequence[DatasetInput],
    policy: MergePolicySpec,
    identity: tuple[str, str],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = 1000,
    descending: bool = False,
    fields: Sequence[str] | None = None,
    max_component_identities: int = 50,
) -> pa.Table:
    """Events of the profile containing `identity`, by event timestamp within [start_ms, end_ms]."""
    frag_fs = file_set(profile_inputs(inputs, policy), "profile", NO_FIELDS, skip_identity_map_leaves=True,
                       linking=linking_inputs(inputs, policy))
    event_fs = file_set(
        [d for d in inputs if d.kind == "event"], "event", Selector(fields, extra_prefixes=EVENT_ALWAYS),
        skip_identity_map_leaves=False,
    )
    st = stitch(frag_fs, event_fs, policy, True, lambda: None)
    query = ExportQuery(identity=identity, max_component_identities=max_component_identities)
    anchors, _ = select_anchors(st, query)
    chosen = np.zeros(st.events.n, dtype=bool)
    if len(anchors):
        chosen = (st.event_anchor == anchors[0]) & ev.in_window(st.events.time_ms, start_ms, end_ms)
    order = ev.event_order(st.events, np.where(chosen, 0, -1), descending=descending)
    order = order[chosen[order]][: max(limit, 0)]
    return ev.events_table(st.events, order)


def split_by_segment(result: MergeResult | MergeResultPart, seg: SegmentFilter) -> pa.Table:
    """The rows of result.profiles that qualify for one segment (for segmentPerBatch exports)."""
    return result.profiles.filter(
        pa.array(split_mask(result.meta.column("segment_keys").combine_chunks(), seg))
    )
