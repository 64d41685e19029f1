"""Orchestrates an export or a lookup: plan the files, stitch identities, then merge, attach events, filter
and project one part of the profiles at a time (see README.md)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import events as ev
from .engines import engine_name, open_backend
from .filters import SEGMENTS, ingest_mask, segment_keys, segment_mask, split_mask
from .identity import Nodes
from .load import FileSet, IdentityRows, Records, Selector, file_set
from .merge import (
    FRAGMENT_SYSTEM,
    IDENTITY_ROWS,
    Backend,
    MergePlan,
    precedence_rank,
    run_attribute_merge,
    run_identity_union,
    timestamp_rank,
)
from .model import (
    DatasetInput,
    ExportCancelled,
    ExportQuery,
    MergePolicySpec,
    MergeResult,
    MergeResultPart,
    SegmentFilter,
)
from .partition import EVENT_INDEX, PartWriter, part_bounds, part_count, resolve_budget, route
from .project import identity_map, legacy_identities, lists_from_long, unflatten, wants_legacy_identities
from .stitch import Stitched, at, profile_inputs, select_anchors, stitch
from .unify import shared_cursor

NO_FIELDS = Selector(())
EVENT_ALWAYS = ("_id", "timestamp")
log = logging.getLogger("upstack.profiles")


class _Stages:
    """Debug log of each stage's duration (the scale checks read it to place time and memory)."""

    def __init__(self) -> None:
        self.mark = time.perf_counter()

    def __call__(self, name: str) -> None:
        pa.default_memory_pool().release_unused()  # hand freed buffers back before the next stage grows
        now = time.perf_counter()
        log.debug("stage %s done in %.3fs", name, now - self.mark, extra={"arrow_bytes": pa.total_allocated_bytes()})
        self.mark = now


def _checkpoint(should_cancel: Callable[[], bool] | None) -> Callable[[], None]:
    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise ExportCancelled("export cancelled")

    return check


def _sorted_lists(lists: pa.Array, n: int) -> pa.Array:
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    values = pc.list_flatten(lists)
    if len(values) == 0:
        return lists_from_long(parents, values, n, null_when_empty=False)
    order = np.lexsort((np.asarray(pc.rank(values, sort_keys="ascending")), parents))
    return lists_from_long(parents[order], values.take(pa.array(order)), n, null_when_empty=False)


def _profile_ids(nodes: Nodes, anchors: np.ndarray) -> pa.Array:
    """Stable opaque profile id: md5 of the anchor identity (the smallest identity of the profile)."""
    table = pa.table(
        {
            "i": np.arange(len(anchors), dtype=np.int64),
            "ns": pa.array(nodes.namespaces, pa.string()).take(pa.array(nodes.ns[anchors], pa.int32())),
            "id": nodes.id.take(pa.array(anchors, pa.int64())),
        }
    )
    con = shared_cursor()
    try:
        con.register("anchors", table)
        out = con.sql("SELECT md5(ns || chr(0) || id) AS pid FROM anchors ORDER BY i").to_arrow_table()
    finally:
        con.close()
    return pc.cast(out.column(0).combine_chunks(), pa.string())


def _newest_event_per_row(events: Records, row: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output row, the index of its newest event (by ingestTime, then timestamp, then record order)
    and that event's ingestTime; -1 where the row has no event."""
    newest = np.full(n, -1, dtype=np.int64)
    ingest = np.full(n, -1, dtype=np.int64)
    if events.n == 0:
        return newest, ingest
    order = np.lexsort((events.order, events.time_ms, events.ingest_ms, row))
    order = order[row[order] >= 0]
    if len(order):
        r = row[order]
        last = np.r_[r[1:] != r[:-1], True]
        newest[r[last]] = order[last]
        ingest[r[last]] = events.ingest_ms[order[last]]
    return newest, ingest


def _by_namespace(profile: np.ndarray, node: np.ndarray, nodes: Nodes) -> dict[str, int]:
    """exportedProfileByNamespaceCounter: per namespace, the output rows having an identity in it. Rows
    come sorted by (profile, node) and nodes are numbered namespace by namespace, so each (profile,
    namespace) pair is one run."""
    if len(node) == 0:
        return {}
    ns = nodes.ns[node]
    first = np.r_[True, (profile[1:] != profile[:-1]) | (ns[1:] != ns[:-1])]
    counts = np.bincount(ns[first], minlength=len(nodes.namespaces))
    return {nodes.namespaces[g]: int(c) for g, c in enumerate(counts) if c}


def _events_view(events: Records, sel: np.ndarray, leaves: dict) -> Records:
    """The events `sel` (increasing indices) as their own Records, with their leaves."""
    return Records(
        n=len(sel),
        dataset_ids=events.dataset_ids,
        dataset=events.dataset[sel],
        ingest_ms=events.ingest_ms[sel],
        order=events.order[sel],
        time_ms=events.time_ms[sel],
        identities=IdentityRows(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int8)),
        primary_occ=np.zeros(0, dtype=np.int64),
        leaves=leaves,
    )


@dataclass
class _Export:
    """What pass 1 (read the index, stitch, choose profiles) leaves for building the parts."""

    st: Stitched
    query: ExportQuery
    plan: MergePlan
    event_fs: FileSet
    anchors: np.ndarray  # sorted: output row i is the profile of anchors[i]
    excluded: int
    frag_row: np.ndarray  # output row per fragment, -1 if not exported
    event_row: np.ndarray
    merge_rank: np.ndarray
    ts_rank: np.ndarray
    f_occ_row: np.ndarray  # output row per identity row (fragments), -1 if not in the union
    e_occ_row: np.ndarray  # same for events
    auth_values: list[str]
    f_auth: np.ndarray  # identity rows' authenticatedState as codes into auth_values
    e_auth: np.ndarray
    namespaces: np.ndarray  # namespace codes with an identity in some candidate profile

    def fragment_columns(self, idx: np.ndarray, lo: np.ndarray | int) -> list[pa.Array]:
        frags, st = self.st.frags, self.st
        values = [
            self.frag_row[idx] - lo,
            self.merge_rank[idx],
            self.ts_rank[idx],
            frags.ingest_ms[idx],
            frags.dataset[idx],
            st.frag_primary[idx],
        ]
        return [pa.array(v, f.type) for v, f in zip(values, FRAGMENT_SYSTEM, strict=True)]

    def fragments_in_memory(self, lo: int, hi: int) -> pa.Table:
        idx = np.flatnonzero((self.frag_row >= lo) & (self.frag_row < hi))
        leaves = [self.st.frags.leaves[p] for p in self.plan.leaves]
        if len(idx) < self.st.frags.n:  # else every fragment is merged: no copy
            take = pa.array(idx, pa.int64())
            leaves = [a.take(take) for a in leaves]
        columns = [pa.chunked_array([a]) for a in self.fragment_columns(idx, lo)]
        columns += [a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a]) for a in leaves]
        return pa.Table.from_arrays(columns, schema=self.plan.fragment_schema)

    def identity_rows(self, lo: int, hi: int) -> pa.Table:
        """Identity occurrences of output rows [lo, hi): every fragment identity; event identities too under
        pdg (the whole component), only the event's primary identity under none (it is the profile's key).
        Events rank below every fragment, so a fragment's authenticatedState wins over an event's."""
        fid, eid, events = self.st.frags.identities, self.st.events.identities, self.st.events
        f = np.flatnonzero((self.f_occ_row >= lo) & (self.f_occ_row < hi))
        e = np.flatnonzero((self.e_occ_row >= lo) & (self.e_occ_row < hi))
        auth = np.concatenate([self.f_auth[f], self.e_auth[e]]).astype(np.int32)
        return pa.Table.from_arrays(
            [
                pa.array(np.concatenate([self.f_occ_row[f], self.e_occ_row[e]]) - lo, pa.int64()),
                pa.array(np.concatenate([fid.node[f], eid.node[e]]), pa.int64()),
                pa.array(auth, pa.int32(), mask=auth < 0),
                pa.array(
                    np.concatenate([self.ts_rank[fid.record[f]], events.order[eid.record[e]] - events.n - 1]),
                    pa.int64(),
                ),
            ],
            schema=IDENTITY_ROWS,
        )


def _prepare(
    st: Stitched, query: ExportQuery, policy: MergePolicySpec, plan: MergePlan, event_fs: FileSet
) -> _Export:
    frags, events, nodes = st.frags, st.events, st.nodes
    anchors, excluded = select_anchors(st, query)
    row_of_node = np.full(nodes.count, -1, dtype=np.int64)
    row_of_node[anchors] = np.arange(len(anchors), dtype=np.int64)
    frag_row = at(row_of_node, st.frag_anchor)
    event_row = at(row_of_node, st.event_anchor)
    ts_rank = timestamp_rank(frags)
    merge_rank = ts_rank if policy.attribute_merge == "timestampOrdered" else precedence_rank(frags, policy.order)

    # Pass 1 keeps these for the whole export: drop what the rows and ranks replace, narrow the rest.
    empty = np.zeros(0, dtype=np.int64)
    frags.time_ms = frags.order = empty  # folded into the ranks
    st.frag_anchor = st.event_anchor = st.anchor_of_node = empty  # folded into the rows
    if st.size_of_node is not None:
        st.size_of_node = empty  # used by the selection only
    fid, eid = frags.identities, events.identities
    f_occ_row = frag_row[fid.record].astype(np.int32) if len(fid.record) else np.zeros(0, dtype=np.int32)
    e_occ_row = event_row[eid.record].astype(np.int32) if len(eid.record) else np.zeros(0, dtype=np.int32)
    if policy.identity_graph != "pdg" and len(eid.record):
        e_occ_row = np.where(eid.node == st.event_primary[eid.record], e_occ_row, -1)

    # One vocabulary of authenticatedState values for both kinds of records.
    auth_values = sorted(set(frags.auth_values) | set(events.auth_values))

    def recode(codes: np.ndarray, values: list[str]) -> np.ndarray:
        lut = np.asarray([auth_values.index(v) for v in values] + [-1], dtype=np.int8)
        return lut[codes]  # -1 indexes the trailing -1

    counts = np.zeros(len(nodes.namespaces), dtype=np.int64)
    for occ_row, ids in ((f_occ_row, fid), (e_occ_row, eid)):
        if len(occ_row):
            counts += np.bincount(nodes.ns[ids.node[occ_row >= 0]], minlength=len(nodes.namespaces))
    return _Export(
        st=st,
        query=query,
        plan=plan,
        event_fs=event_fs,
        anchors=anchors,
        excluded=excluded,
        frag_row=frag_row,
        event_row=event_row,
        merge_rank=merge_rank,
        ts_rank=ts_rank,
        f_occ_row=f_occ_row,
        e_occ_row=e_occ_row,
        auth_values=auth_values,
        f_auth=recode(fid.auth, frags.auth_values),
        e_auth=recode(eid.auth, events.auth_values),
        namespaces=np.flatnonzero(counts),
    )


def _build_part(
    x: _Export,
    backend: Backend,
    k: int,
    parts: int,
    lo: int,
    hi: int,
    fragments: Callable[[], pa.Table],
    part_events: Records,
    check: Callable[[], None],
    stage: Callable[[str], None] = lambda name: None,
) -> MergeResultPart:
    """Merge, filter and project the output rows [lo, hi) (fragments: gives their fragments table, held by
    no one else so it is freed once merged; part_events: the events of those rows, with their leaves when
    eventList is asked for)."""
    st, query, nodes = x.st, x.query, x.st.nodes
    n_cand = hi - lo
    per_profile, merged = run_attribute_merge(backend, x.plan, fragments())
    stage(f"part {k} attribute merge")
    union = run_identity_union(backend, x.identity_rows(lo, hi))
    check()
    stage(f"part {k} identity union")

    # Per candidate profile: its merge row (none for empty profiles) and its newest event.
    sel = np.flatnonzero((x.event_row >= lo) & (x.event_row < hi))
    event_row = x.event_row[sel] - lo
    pos = np.full(n_cand, -1, dtype=np.int64)
    pos[per_profile.column("profile_idx").to_numpy()] = np.arange(per_profile.num_rows, dtype=np.int64)
    has_frag = pos >= 0
    if has_frag.all():  # no empty profile: no representative or last change to take from an event
        newest_event = newest_event_ingest = np.full(n_cand, -1, dtype=np.int64)
    else:
        newest_event, newest_event_ingest = _newest_event_per_row(part_events, event_row, n_cand)
    last_modified = np.where(has_frag, at(per_profile.column("last_modified_ms").to_numpy(), pos), newest_event_ingest)
    rep_node = np.where(
        has_frag,
        at(per_profile.column("representative_node").to_numpy(), pos),
        at(st.event_primary, at(sel, newest_event)),
    )

    # Filter first, then build output columns only for the rows that are exported.
    if query.segments:
        scatter = pa.array(pos, pa.int64(), mask=~has_frag)
        candidates = {p: a.take(scatter) for p, a in merged.items() if p[0] == SEGMENTS}
        keep = segment_mask(candidates, n_cand, query)
    else:
        keep = np.ones(n_cand, dtype=bool)
    keep &= ingest_mask(last_modified, query)
    kept = np.flatnonzero(keep)
    n = len(kept)
    new_row = np.full(n_cand, -1, dtype=np.int64)
    new_row[kept] = np.arange(n, dtype=np.int64)
    all_frags = bool(has_frag.all()) and n == per_profile.num_rows
    rows = None if all_frags else pa.array(pos[kept], pa.int64(), mask=~has_frag[kept])
    if rows is not None:
        merged = {p: a.take(rows) for p, a in merged.items()}
    rep_node, last_modified = rep_node[kept], last_modified[kept]
    event_row = at(new_row, event_row)

    u_old = union.column("profile_idx").to_numpy()
    u_keep = keep[u_old]
    u_profile = new_row[u_old[u_keep]]
    u_node = union.column("node").to_numpy()[u_keep]
    u_auth = np.asarray(pc.fill_null(union.column("auth"), -1).to_numpy(), dtype=np.int64)[u_keep]

    columns: list[tuple[str, pa.Array]] = [
        ("identityMap", identity_map(u_profile, u_node, u_auth, x.auth_values, rep_node, nodes, n, x.namespaces))
    ]
    out_keep = Selector(query.fields)
    legacy = wants_legacy_identities(query.fields)
    columns += [
        (name, col)
        for name, col in unflatten({p: a for p, a in merged.items() if out_keep.wants(p)}, n)
        if name != "identityMap" and not (legacy and name == "identities")
    ]
    if legacy:
        columns.append(("identities", legacy_identities(u_profile, u_node, rep_node, nodes, n)))
    if query.include_events:
        event_list = ev.event_list(
            part_events, event_row, n, query.event_from_ingest_ms, query.event_to_ingest_ms, check
        )
        columns.append(("eventList", event_list))

    if query.identity is not None:
        entity_ns = pa.array([query.identity[0]] * n, pa.string())
        entity_id = pa.array([query.identity[1]] * n, pa.string())
    else:
        entity_ns = pa.array(nodes.namespaces, pa.string()).take(pa.array(nodes.ns[rep_node], pa.int64()))
        entity_id = nodes.id.take(pa.array(rep_node, pa.int64()))
    sources = per_profile.column("sources").combine_chunks()
    sources = _sorted_lists(sources if rows is None else sources.take(rows), n)
    sources = pa.ListArray.from_arrays(
        sources.offsets, pa.array(st.frags.dataset_ids, pa.string()).take(sources.values)
    )
    meta = pa.table(
        {
            "profile_id": _profile_ids(nodes, x.anchors[lo:hi][kept]),
            "entity_id": entity_id,
            "entity_ns": entity_ns,
            "sources": sources,
            "last_modified_ms": pa.array(last_modified, pa.int64()),
            "fragment_count": np.maximum(at(per_profile.column("fragment_count").to_numpy(), pos[kept]), 0),
            "segment_keys": segment_keys(merged, n),
        }
    )
    stage(f"part {k} output columns")
    return MergeResultPart(
        profiles=pa.Table.from_arrays([c for _, c in columns], names=[name for name, _ in columns]),
        meta=meta,
        part=k,
        parts=parts,
        by_namespace=_by_namespace(u_profile, u_node, nodes),
        excluded_components=x.excluded,
        fragments_read=st.frags.n,
        events_read=st.events.n,
    )


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
) -> Iterator[MergeResultPart]:
    """Merge profiles of the lake files under `policy` and yield the rows `query` asks for, part by part,
    in memory about `memory_budget_bytes` (default: from memory_limit, else 1.5 GB).

    When the leaf columns fit the budget, everything is read once and merged as one part. Otherwise pass 1
    reads only identities and system columns, pass 2 streams the files into per-part temp Parquet files
    under `temp_dir`, and pass 3 merges one part at a time. `engine` ("duckdb" or "spark"; default
    UPSTACK_ENGINE, else duckdb) runs the connected components and the merge SQL; `spark_master` (default
    UPSTACK_SPARK_MASTER, else local[2]) is the Spark cluster. Drop each part before asking for the next:
    the next one is built while a reference to the previous keeps it in memory.
    """
    check = _checkpoint(should_cancel)
    pdg = policy.identity_graph == "pdg"
    load_events = query.include_events or pdg or query.empty_profiles or query.identity is not None
    # segmentMembership is always merged: meta.segment_keys and the segment filters read it.
    frag_keep = Selector(query.fields, extra_prefixes=(SEGMENTS,))
    event_keep = Selector(query.event_fields, extra_prefixes=EVENT_ALWAYS) if query.include_events else NO_FIELDS
    frag_fs = file_set(profile_inputs(inputs, policy), "profile", frag_keep, skip_identity_map_leaves=True)
    event_inputs = [d for d in inputs if d.kind == "event"] if load_events else []
    event_fs = file_set(event_inputs, "event", event_keep, skip_identity_map_leaves=False)
    budget = resolve_budget(memory_budget_bytes, memory_limit)
    leaf_bytes = frag_fs.estimate_leaf_bytes() + (event_fs.estimate_leaf_bytes() if query.include_events else 0)
    parts = part_count(leaf_bytes, budget)
    check()

    work_dir = None
    if parts > 1 or engine_name(engine) == "spark":  # Spark exchanges tables through files
        if temp_dir:
            os.makedirs(temp_dir, exist_ok=True)
        work_dir = tempfile.mkdtemp(prefix="upstack-merge-", dir=temp_dir or None)
    # DuckDB is not capped at the budget: parts are sized so that its aggregate fits, and a cap made it
    # spill at 5M (2-4x slower merges) without lowering the peak, which pass 1 sets.
    backend = open_backend(engine, temp_dir=temp_dir, memory_limit=memory_limit, work_dir=work_dir,
                           spark_master=spark_master)
    stage = _Stages()
    log.debug("merge in %d part(s): %d leaf bytes estimated, budget %d", parts, leaf_bytes, budget)
    try:
        st = stitch(frag_fs, event_fs, policy, parts == 1, check, backend.components, stage)
        plan = MergePlan.for_leaves(frag_fs.types)
        x = _prepare(st, query, policy, plan, event_fs)
        stage("prepare")
        n_rows = len(x.anchors)
        bounds = part_bounds(x.frag_row, x.event_row if query.include_events else None, n_rows, parts)
        if parts == 1 or len(bounds) == 1:
            if parts > 1:  # everything fits one part after all: read the leaves now, in one pass
                st.frags.leaves = _read_all_leaves(frag_fs, check)
                if query.include_events:
                    st.events.leaves = _read_all_leaves(event_fs, check)
            sel = np.flatnonzero(x.event_row >= 0)
            ev_leaves = {p: ev.whole(a.take(pa.array(sel, pa.int64()))) for p, a in st.events.leaves.items()}
            yield _build_part(x, backend, 0, 1, 0, n_rows, lambda: x.fragments_in_memory(0, n_rows),
                              _events_view(st.events, sel, ev_leaves), check, stage)
            return
        yield from _spilled_parts(x, backend, frag_fs, bounds, work_dir, check, stage)
    finally:
        backend.close()
        if work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


def _read_all_leaves(fs: FileSet, check: Callable[[], None]) -> dict:
    from .load import file_leaves, iter_leaf_batches

    chunks: dict = {p: [] for p in fs.types}
    for _, table in iter_leaf_batches(fs, check):
        for p, a in file_leaves(table, fs).items():
            chunks[p].append(a)
    return {p: pa.concat_arrays(c) if c else pa.nulls(0, fs.types[p]) for p, c in chunks.items()}


def _spilled_parts(
    x: _Export,
    backend: Backend,
    frag_fs: FileSet,
    bounds: list[tuple[int, int]],
    work_dir: str,
    check: Callable[[], None],
    stage: Callable[[str], None],
) -> Iterator[MergeResultPart]:
    """Pass 2 (route fragments, and events when exported, into per-part files) and pass 3 (one part at a
    time)."""
    parts = len(bounds)
    lo_of_part = np.asarray([lo for lo, _ in bounds], dtype=np.int64)
    his = np.asarray([hi for _, hi in bounds], dtype=np.int64)

    def part_of(rows: np.ndarray) -> np.ndarray:
        out = np.searchsorted(his, rows, side="right").astype(np.int32)
        return np.where(rows >= 0, out, -1)

    frag_part = part_of(x.frag_row)
    frag_writer = PartWriter(work_dir, "fragments", x.plan.fragment_schema, parts)
    try:
        route(frag_fs, frag_part, frag_writer, lambda idx: x.fragment_columns(idx, lo_of_part[frag_part[idx]]), check)
    finally:
        frag_writer.close()
    ev_writer = None
    if x.query.include_events:
        ev_fs = x.event_fs
        ev_schema = pa.schema(
            [(EVENT_INDEX, pa.int64())] + [pa.field(f"e{i}", t) for i, t in enumerate(ev_fs.types.values())]
        )
        ev_writer = PartWriter(work_dir, "events", ev_schema, parts)
        try:
            route(ev_fs, part_of(x.event_row), ev_writer, lambda idx: [pa.array(idx, pa.int64())], check)
        finally:
            ev_writer.close()
    check()
    stage("route")

    for k, (lo, hi) in enumerate(bounds):
        sel = np.flatnonzero((x.event_row >= lo) & (x.event_row < hi))
        leaves: dict = {}
        if ev_writer is not None:
            table = ev_writer.read(k)
            if not np.array_equal(table.column(EVENT_INDEX).to_numpy(), sel):
                raise AssertionError("event part file out of step with the index")
            leaves = {p: table.column(i + 1).combine_chunks() for i, p in enumerate(x.event_fs.types)}
        part = _build_part(
            x, backend, k, parts, lo, hi, lambda k=k: frag_writer.read(k), _events_view(x.st.events, sel, leaves), check,
            stage,
        )
        yield part
        del part
        check()


def merge_profiles(
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
) -> MergeResult:
    """Merge profiles of the lake files under `policy` and return all the rows `query` asks for at once
    (the parts of iter_merge_profiles, concatenated: for lookups, tests and small exports)."""
    parts = list(
        iter_merge_profiles(
            inputs,
            policy,
            query,
            should_cancel=should_cancel,
            temp_dir=temp_dir,
            memory_limit=memory_limit,
            memory_budget_bytes=memory_budget_bytes,
            engine=engine,
            spark_master=spark_master,
        )
    )
    by_namespace: dict[str, int] = {}
    for p in parts:
        for ns, c in p.by_namespace.items():
            by_namespace[ns] = by_namespace.get(ns, 0) + c
    first = parts[0]
    return MergeResult(
        profiles=pa.concat_tables([p.profiles for p in parts]) if len(parts) > 1 else first.profiles,
        meta=pa.concat_tables([p.meta for p in parts]) if len(parts) > 1 else first.meta,
        excluded_components=first.excluded_components,
        by_namespace=dict(sorted(by_namespace.items())),
        fragments_read=first.fragments_read,
        events_read=first.events_read,
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
    frag_fs = file_set(profile_inputs(inputs, policy), "profile", NO_FIELDS, skip_identity_map_leaves=True)
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
