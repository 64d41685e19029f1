"""Orchestrates an export or a lookup: load, stitch, merge, attach events, filter, project (see README.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import events as ev
from .filters import SEGMENTS, ingest_mask, segment_keys, segment_mask, split_mask
from .identity import Nodes, component_anchors, encode_nodes, primary_nodes, record_edges, upsert_survivors
from .load import Records, Selector, load_records
from .merge import (
    connect,
    precedence_rank,
    record_order_keys,
    run_attribute_merge,
    run_identity_union,
    timestamp_rank,
)
from .model import (
    ComponentTooLarge,
    DatasetInput,
    ExportCancelled,
    ExportQuery,
    MergePolicySpec,
    MergeResult,
    SegmentFilter,
)
from .project import identity_map, legacy_identities, lists_from_long, unflatten, wants_legacy_identities

NO_FIELDS = Selector(())
EVENT_ALWAYS = ("_id", "timestamp")


def _checkpoint(should_cancel: Callable[[], bool] | None) -> Callable[[], None]:
    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise ExportCancelled("export cancelled")
    return check


def _at(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """table[idx] where idx >= 0, else -1 (tolerates an empty table)."""
    out = np.full(len(idx), -1, dtype=np.int64)
    ok = idx >= 0
    out[ok] = table[idx[ok]]
    return out


@dataclass
class Stitched:
    """Fragments and events with every record assigned to a profile anchor (a node, or -1)."""

    frags: Records
    events: Records
    nodes: Nodes
    frag_row_node: np.ndarray  # node per fragment identity row
    event_row_node: np.ndarray
    frag_primary: np.ndarray  # primary node per fragment
    event_primary: np.ndarray
    frag_anchor: np.ndarray  # -1: replaced by upsert or without identity
    event_anchor: np.ndarray
    anchor_of_node: np.ndarray
    size_of_node: np.ndarray | None  # pdg only: identities in the node's component


def stitch(inputs: Sequence[DatasetInput], policy: MergePolicySpec, frag_keep: Selector, event_keep: Selector,
           load_events: bool, check: Callable[[], None]) -> Stitched:
    """Load both kinds of records and assign each to a profile under the policy's identity graph."""
    profile_inputs = [d for d in inputs if d.kind == "profile"]
    if policy.attribute_merge == "dataSetPrecedence":
        # Datasets outside `order` are not merged at all: neither attributes nor identities.
        profile_inputs = [d for d in profile_inputs if d.dataset_id in policy.order]
    event_inputs = [d for d in inputs if d.kind == "event"] if load_events else []
    frags = load_records(profile_inputs, "profile", frag_keep, skip_identity_map_leaves=True, should_cancel=check)
    events = load_records(event_inputs, "event", event_keep, skip_identity_map_leaves=False, should_cancel=check)
    check()
    nodes, (frag_rn, event_rn) = encode_nodes(frags, events)
    frag_primary = primary_nodes(frags.identities, frag_rn, frags.n)
    survive = upsert_survivors(frags, frag_primary)
    event_primary = primary_nodes(events.identities, event_rn, events.n)
    size_of_node = None
    if policy.identity_graph == "pdg":
        anchor_of_node, size_of_node = component_anchors(nodes.count, [
            record_edges(frags.identities, frag_rn, frag_primary, survive),
            record_edges(events.identities, event_rn, event_primary, None),
        ])
    else:
        anchor_of_node = np.arange(nodes.count, dtype=np.int64)
    frag_anchor = np.where(survive, _at(anchor_of_node, frag_primary), -1)
    event_anchor = _at(anchor_of_node, event_primary)
    check()
    return Stitched(frags, events, nodes, frag_rn, event_rn, frag_primary, event_primary, frag_anchor,
                    event_anchor, anchor_of_node, size_of_node)


def _lookup_anchor(st: Stitched, identity: tuple[str, str], limit: int, existing: np.ndarray) -> np.ndarray:
    node = st.nodes.find(*identity)
    if node < 0:
        return np.zeros(0, dtype=np.int64)
    if st.size_of_node is not None:
        if st.size_of_node[node] > limit:
            raise ComponentTooLarge(f"identity graph of {identity[0]}:{identity[1]} has "
                                    f"{int(st.size_of_node[node])} identities (limit {limit})")
        anchor = st.anchor_of_node[node]
        return np.asarray([anchor] if np.isin(anchor, existing) else [], dtype=np.int64)
    if np.isin(node, existing):
        return np.asarray([node], dtype=np.int64)
    # Graph "none": a secondary identity finds the (smallest) profile whose surviving fragments list it.
    rows = st.frag_row_node == node
    owners = st.frag_anchor[st.frags.identities.record[rows]]
    owners = owners[owners >= 0]
    return np.asarray([owners.min()] if len(owners) else [], dtype=np.int64)


def select_anchors(st: Stitched, query: ExportQuery) -> tuple[np.ndarray, int]:
    """The profiles to build (sorted anchors) and the number of oversized pdg components left out."""
    with_fragments = np.unique(st.frag_anchor[st.frag_anchor >= 0])
    with_events = np.unique(st.event_anchor[st.event_anchor >= 0])
    if query.identity is not None:
        # A lookup always answers an events-only identity with its empty profile.
        existing = np.union1d(with_fragments, with_events)
        return _lookup_anchor(st, query.identity, query.max_component_identities, existing), 0
    anchors = np.union1d(with_fragments, with_events) if query.empty_profiles else with_fragments
    if st.size_of_node is None:
        return anchors, 0
    too_big = st.size_of_node[anchors] > query.max_component_identities
    return anchors[~too_big], int(too_big.sum())


def _sorted_lists(lists: pa.Array, n: int) -> pa.Array:
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    values = pc.list_flatten(lists)
    if len(values) == 0:
        return lists_from_long(parents, values, n, null_when_empty=False)
    order = np.lexsort((np.asarray(pc.rank(values, sort_keys="ascending")), parents))
    return lists_from_long(parents[order], values.take(pa.array(order)), n, null_when_empty=False)


def _profile_ids(nodes: Nodes, anchors: np.ndarray, con) -> pa.Array:
    """Stable opaque profile id: md5 of the anchor identity (the smallest identity of the profile)."""
    table = pa.table({
        "i": np.arange(len(anchors), dtype=np.int64),
        "ns": pa.array(nodes.namespaces, pa.string()).take(pa.array(nodes.ns[anchors], pa.int32())),
        "id": nodes.id.take(pa.array(anchors, pa.int64())),
    })
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
    event_keep = Selector(query.event_fields, extra_prefixes=EVENT_ALWAYS) if query.include_events else NO_FIELDS
    st = stitch(inputs, policy, frag_keep, event_keep, load_events, check)
    frags, events, nodes = st.frags, st.events, st.nodes

    anchors, excluded = select_anchors(st, query)
    n = len(anchors)
    row_of_node = np.full(nodes.count, -1, dtype=np.int64)
    row_of_node[anchors] = np.arange(n, dtype=np.int64)
    frag_row = _at(row_of_node, st.frag_anchor)
    event_row = _at(row_of_node, st.event_anchor)

    ts_rank = timestamp_rank(frags)
    merge_rank = ts_rank if policy.attribute_merge == "timestampOrdered" else precedence_rank(frags, policy.order)
    idx = np.flatnonzero(frag_row >= 0)
    take = pa.array(idx, pa.int64())
    fragments = pa.table({
        "profile_idx": frag_row[idx],
        "merge_rank": merge_rank[idx],
        "ts_rank": ts_rank[idx],
        "ingest_ms": frags.ingest_ms[idx],
        "dataset_id": pa.array(frags.dataset_ids, pa.string()).take(pa.array(frags.dataset[idx], pa.int32())),
        "primary_node": st.frag_primary[idx],
    })

    # Identity rows of the profile: every fragment identity; event identities too under pdg (the whole
    # component), only the event's primary identity under none (it is the profile's key).
    fid = frags.identities
    f_sel = frag_row[fid.record] >= 0
    eid = events.identities
    e_sel = event_row[eid.record] >= 0
    if not pdg:
        e_sel &= st.event_row_node == st.event_primary[eid.record]
    event_rank = np.empty(events.n, dtype=np.int64)
    event_rank[np.lexsort(record_order_keys(events))] = np.arange(events.n, dtype=np.int64) - events.n - 1
    identity_rows = pa.table({
        "profile_idx": np.concatenate([frag_row[fid.record[f_sel]], event_row[eid.record[e_sel]]]),
        "node": np.concatenate([st.frag_row_node[f_sel], st.event_row_node[e_sel]]),
        "auth": pa.concat_arrays([fid.auth.filter(pa.array(f_sel)), eid.auth.filter(pa.array(e_sel))]),
        "rank": np.concatenate([ts_rank[fid.record[f_sel]], event_rank[eid.record[e_sel]]]),
    })

    con = connect(temp_dir, memory_limit)
    try:
        per_profile, merged = run_attribute_merge(con, fragments, {p: a.take(take) for p, a in frags.leaves.items()})
        union = run_identity_union(con, identity_rows)
        profile_ids = _profile_ids(nodes, anchors, con)
    finally:
        con.close()
    check()

    # Empty profiles have no merge row: scatter merge rows to output rows, nulls elsewhere.
    pos = np.full(n, -1, dtype=np.int64)
    pos[per_profile.column("profile_idx").to_numpy()] = np.arange(per_profile.num_rows, dtype=np.int64)
    has_frag = pos >= 0
    scatter = pa.array(pos, pa.int64(), mask=~has_frag)
    merged = {p: a.take(scatter) for p, a in merged.items()}
    newest_event, newest_event_ingest = _newest_event_per_row(events, event_row, n)
    rep_node = np.where(has_frag, _at(per_profile.column("representative_node").to_numpy(), pos),
                        _at(st.event_primary, newest_event))
    last_modified = np.where(has_frag, _at(per_profile.column("last_modified_ms").to_numpy(), pos),
                             newest_event_ingest)
    sources = _sorted_lists(per_profile.column("sources").combine_chunks().take(scatter), n)

    u_profile = union.column("profile_idx").to_numpy()
    u_node = union.column("node").to_numpy()
    u_auth = union.column("auth").combine_chunks().cast(pa.string())
    columns: list[tuple[str, pa.Array]] = [("identityMap", identity_map(u_profile, u_node, u_auth, rep_node, nodes, n))]
    out_keep = Selector(query.fields)
    legacy = wants_legacy_identities(query.fields)
    columns += [(name, col) for name, col in unflatten({p: a for p, a in merged.items() if out_keep.wants(p)}, n)
                if name != "identityMap" and not (legacy and name == "identities")]
    if legacy:
        columns.append(("identities", legacy_identities(u_profile, u_node, rep_node, nodes, n)))
    if query.include_events:
        columns.append(("eventList", ev.event_list(events, event_row, n, query.event_from_ingest_ms,
                                                   query.event_to_ingest_ms, check)))

    if query.identity is not None:
        entity_ns = pa.array([query.identity[0]] * n, pa.string())
        entity_id = pa.array([query.identity[1]] * n, pa.string())
    else:
        entity_ns = pa.array(nodes.namespaces, pa.string()).take(pa.array(_at(nodes.ns, rep_node), pa.int64()))
        entity_id = nodes.id.take(pa.array(rep_node, pa.int64()))
    meta = pa.table({
        "profile_id": profile_ids,
        "entity_id": entity_id,
        "entity_ns": entity_ns,
        "sources": sources,
        "last_modified_ms": pa.array(last_modified, pa.int64()),
        "fragment_count": np.maximum(_at(per_profile.column("fragment_count").to_numpy(), pos), 0),
        "segment_keys": segment_keys(merged, n),
    })
    keep = segment_mask(merged, n, query) & ingest_mask(last_modified, query)
    profiles = pa.Table.from_arrays([c for _, c in columns], names=[name for name, _ in columns])
    mask = pa.array(keep)

    kept_ns = np.unique(u_profile[keep[u_profile]] * max(len(nodes.namespaces), 1) + nodes.ns[u_node[keep[u_profile]]])
    counts = np.bincount(kept_ns % max(len(nodes.namespaces), 1), minlength=len(nodes.namespaces))
    by_namespace = {nodes.namespaces[g]: int(c) for g, c in enumerate(counts) if c}
    return MergeResult(
        profiles=profiles.filter(mask),
        meta=meta.filter(mask),
        excluded_components=excluded,
        by_namespace=by_namespace,
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
    return result.profiles.filter(pa.array(split_mask(result.meta.column("segment_keys").combine_chunks(), seg)))
