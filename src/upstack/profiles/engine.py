"""Orchestrates an export or a lookup: load, stitch, merge, attach events, filter, project (see README.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import events as ev
from .filters import SEGMENTS, ingest_mask, segment_keys, segment_mask, split_mask
from .identity import Nodes
from .load import Records, Selector
from .merge import (
    connect,
    precedence_rank,
    record_order_keys,
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
    SegmentFilter,
)
from .project import identity_map, legacy_identities, lists_from_long, unflatten, wants_legacy_identities
from .stitch import Stitched, at, select_anchors, stitch

NO_FIELDS = Selector(())
EVENT_ALWAYS = ("_id", "timestamp")


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


def _profile_ids(nodes: Nodes, anchors: np.ndarray, con) -> pa.Array:
    """Stable opaque profile id: md5 of the anchor identity (the smallest identity of the profile)."""
    table = pa.table(
        {
            "i": np.arange(len(anchors), dtype=np.int64),
            "ns": pa.array(nodes.namespaces, pa.string()).take(pa.array(nodes.ns[anchors], pa.int32())),
            "id": nodes.id.take(pa.array(anchors, pa.int64())),
        }
    )
    con.register("anchors", table)
    try:
        out = con.sql("SELECT md5(ns || chr(0) || id) AS pid FROM anchors ORDER BY i").to_arrow_table()
    finally:
        con.unregister("anchors")
    return pc.cast(out.column(0).combine_chunks(), pa.string())


def _newest_event_per_row(events: Records, row: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output row, the index of its newest event (by ingestTime, then timestamp, then record order)
    and that event's ingestTime; -1 where the row has no event."""
    newest = np.full(n, -1, dtype=np.int64)
    ingest = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((events.file, events.row, events.batch, events.time_ms, events.ingest_ms, row))
    order = order[row[order] >= 0]
    if len(order):
        r = row[order]
        last = np.r_[r[1:] != r[:-1], True]
        newest[r[last]] = order[last]
        ingest[r[last]] = events.ingest_ms[order[last]]
    return newest, ingest


def _fragments_table(
    st: Stitched, frag_row: np.ndarray, policy: MergePolicySpec, ts_rank: np.ndarray
) -> pa.Table:
    """System columns of the fragments that belong to an output row, as the merge SQL reads them."""
    frags = st.frags
    merge_rank = (
        ts_rank if policy.attribute_merge == "timestampOrdered" else precedence_rank(frags, policy.order)
    )
    idx = np.flatnonzero(frag_row >= 0)
    dataset_ids = pa.array(frags.dataset_ids, pa.string())
    return pa.table(
        {
            "profile_idx": frag_row[idx],
            "merge_rank": merge_rank[idx],
            "ts_rank": ts_rank[idx],
            "ingest_ms": frags.ingest_ms[idx],
            "dataset_id": dataset_ids.take(pa.array(frags.dataset[idx], pa.int32())),
            "primary_node": st.frag_primary[idx],
        }
    )


def _identity_rows(
    st: Stitched, frag_row: np.ndarray, event_row: np.ndarray, ts_rank: np.ndarray, pdg: bool
) -> pa.Table:
    """Identity occurrences per output row: every fragment identity; event identities too under pdg (the
    whole component), only the event's primary identity under none (it is the profile's key). Events
    rank below every fragment, so a fragment's authenticatedState wins over an event's."""
    fid, eid, events = st.frags.identities, st.events.identities, st.events
    f_sel = frag_row[fid.record] >= 0
    e_sel = event_row[eid.record] >= 0
    if not pdg:
        e_sel &= st.event_row_node == st.event_primary[eid.record]
    event_rank = np.empty(events.n, dtype=np.int64)
    event_rank[np.lexsort(record_order_keys(events))] = np.arange(events.n, dtype=np.int64) - events.n - 1
    return pa.table(
        {
            "profile_idx": np.concatenate([frag_row[fid.record[f_sel]], event_row[eid.record[e_sel]]]),
            "node": np.concatenate([st.frag_row_node[f_sel], st.event_row_node[e_sel]]),
            "auth": pa.concat_arrays([fid.auth.filter(pa.array(f_sel)), eid.auth.filter(pa.array(e_sel))]),
            "rank": np.concatenate([ts_rank[fid.record[f_sel]], event_rank[eid.record[e_sel]]]),
        }
    )


def _by_namespace(profile: np.ndarray, node: np.ndarray, nodes: Nodes) -> dict[str, int]:
    """exportedProfileByNamespaceCounter: per namespace, the output rows having an identity in it."""
    width = max(len(nodes.namespaces), 1)
    pairs = np.unique(profile * width + nodes.ns[node])
    counts = np.bincount(pairs % width, minlength=len(nodes.namespaces))
    return {nodes.namespaces[g]: int(c) for g, c in enumerate(counts) if c}


def merge_profiles(
    inputs: Sequence[DatasetInput],
    policy: MergePolicySpec,
    query: ExportQuery,
    *,
    should_cancel: Callable[[], bool] | None = None,
    temp_dir: str | None = None,
    memory_limit: str | None = None,
) -> MergeResult:
    """Merge profiles of the lake files under `policy` and return the rows `query` asks for."""
    check = _checkpoint(should_cancel)
    pdg = policy.identity_graph == "pdg"
    load_events = query.include_events or pdg or query.empty_profiles or query.identity is not None
    # segmentMembership is always merged: meta.segment_keys and the segment filters read it.
    frag_keep = Selector(query.fields, extra_prefixes=(SEGMENTS,))
    event_keep = (
        Selector(query.event_fields, extra_prefixes=EVENT_ALWAYS) if query.include_events else NO_FIELDS
    )
    st = stitch(inputs, policy, frag_keep, event_keep, load_events, check)
    frags, events, nodes = st.frags, st.events, st.nodes

    anchors, excluded = select_anchors(st, query)
    row_of_node = np.full(nodes.count, -1, dtype=np.int64)
    row_of_node[anchors] = np.arange(len(anchors), dtype=np.int64)
    frag_row = at(row_of_node, st.frag_anchor)
    event_row = at(row_of_node, st.event_anchor)
    ts_rank = timestamp_rank(frags)
    take = pa.array(np.flatnonzero(frag_row >= 0), pa.int64())

    con = connect(temp_dir, memory_limit)
    try:
        per_profile, merged = run_attribute_merge(
            con,
            _fragments_table(st, frag_row, policy, ts_rank),
            {p: a.take(take) for p, a in frags.leaves.items()},
        )
        union = run_identity_union(con, _identity_rows(st, frag_row, event_row, ts_rank, pdg))
        profile_ids = _profile_ids(nodes, anchors, con)
    finally:
        con.close()
    check()

    # Per candidate profile: its merge row (none for empty profiles) and its newest event.
    pos = np.full(len(anchors), -1, dtype=np.int64)
    pos[per_profile.column("profile_idx").to_numpy()] = np.arange(per_profile.num_rows, dtype=np.int64)
    newest_event, newest_event_ingest = _newest_event_per_row(events, event_row, len(anchors))
    has_frag = pos >= 0
    last_modified = np.where(
        has_frag, at(per_profile.column("last_modified_ms").to_numpy(), pos), newest_event_ingest
    )
    rep_node = np.where(
        has_frag,
        at(per_profile.column("representative_node").to_numpy(), pos),
        at(st.event_primary, newest_event),
    )

    # Filter first, then build output columns only for the rows that are exported.
    scatter = pa.array(pos, pa.int64(), mask=~has_frag)
    candidates = {p: a.take(scatter) for p, a in merged.items()}
    keep = segment_mask(candidates, len(anchors), query) & ingest_mask(last_modified, query)
    kept = np.flatnonzero(keep)
    n = len(kept)
    new_row = np.full(len(anchors), -1, dtype=np.int64)
    new_row[kept] = np.arange(n, dtype=np.int64)
    rows = pa.array(pos[kept], pa.int64(), mask=~has_frag[kept])
    merged = {p: a.take(rows) for p, a in merged.items()}
    rep_node, last_modified = rep_node[kept], last_modified[kept]
    event_row = at(new_row, event_row)

    u_old = union.column("profile_idx").to_numpy()
    u_keep = keep[u_old]
    u_profile = new_row[u_old[u_keep]]
    u_node = union.column("node").to_numpy()[u_keep]
    u_auth = union.column("auth").combine_chunks().cast(pa.string()).filter(pa.array(u_keep))

    columns: list[tuple[str, pa.Array]] = [
        ("identityMap", identity_map(u_profile, u_node, u_auth, rep_node, nodes, n))
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
            events, event_row, n, query.event_from_ingest_ms, query.event_to_ingest_ms, check
        )
        columns.append(("eventList", event_list))

    if query.identity is not None:
        entity_ns = pa.array([query.identity[0]] * n, pa.string())
        entity_id = pa.array([query.identity[1]] * n, pa.string())
    else:
        entity_ns = pa.array(nodes.namespaces, pa.string()).take(pa.array(nodes.ns[rep_node], pa.int64()))
        entity_id = nodes.id.take(pa.array(rep_node, pa.int64()))
    meta = pa.table(
        {
            "profile_id": profile_ids.take(pa.array(kept, pa.int64())),
            "entity_id": entity_id,
            "entity_ns": entity_ns,
            "sources": _sorted_lists(per_profile.column("sources").combine_chunks().take(rows), n),
            "last_modified_ms": pa.array(last_modified, pa.int64()),
            "fragment_count": np.maximum(at(per_profile.column("fragment_count").to_numpy(), pos[kept]), 0),
            "segment_keys": segment_keys(merged, n),
        }
    )
    return MergeResult(
        profiles=pa.Table.from_arrays([c for _, c in columns], names=[name for name, _ in columns]),
        meta=meta,
        excluded_components=excluded,
        by_namespace=_by_namespace(u_profile, u_node, nodes),
        fragments_read=frags.n,
        events_read=events.n,
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
    st = stitch(inputs, policy, NO_FIELDS, Selector(fields, extra_prefixes=EVENT_ALWAYS), True, lambda: None)
    query = ExportQuery(identity=identity, max_component_identities=max_component_identities)
    anchors, _ = select_anchors(st, query)
    chosen = np.zeros(st.events.n, dtype=bool)
    if len(anchors):
        chosen = (st.event_anchor == anchors[0]) & ev.in_window(st.events.time_ms, start_ms, end_ms)
    order = ev.event_order(st.events, np.where(chosen, 0, -1), descending=descending)
    order = order[chosen[order]][: max(limit, 0)]
    return ev.events_table(st.events, order)


def split_by_segment(result: MergeResult, seg: SegmentFilter) -> pa.Table:
    """The rows of result.profiles that qualify for one segment (for segmentPerBatch exports)."""
    return result.profiles.filter(
        pa.array(split_mask(result.meta.column("segment_keys").combine_chunks(), seg))
    )
