"""Build one part of an export: run the merge plan on its fragments, then events, filters, projection and
the per-row metadata, for a contiguous range of output rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import events as ev
from .filters import SEGMENTS, ingest_mask, segment_keys, segment_mask
from .identity import Nodes
from .load import IDENTITY_ARRAYS, FileSet, IdentityRows, Records, Selector, index_arrays
from .merge import (
    FRAGMENT_SYSTEM,
    IDENTITY_ROWS,
    Backend,
    MergePlan,
    precedence_rank,
    run_identity_union,
    timestamp_rank,
)
from .model import ExportQuery, MergePolicySpec, MergeResultPart
from .park import parked
from .project import identity_map, legacy_identities, lists_from_long, unflatten, wants_legacy_identities
from .sorting import index_dtype, lexsort
from .stitch import Stitched, at, select_anchors
from .textsort import NodeTexts
from .unify import shared_cursor
from .winners import run_attribute_merge


def _sorted_lists(lists: pa.Array, n: int) -> pa.Array:
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    values = pc.list_flatten(lists)
    if len(values) == 0:
        return lists_from_long(parents, values, n, null_when_empty=False)
    order = np.lexsort((np.asarray(pc.rank(values, sort_keys="ascending")), parents))
    return lists_from_long(parents[order], values.take(pa.array(order)), n, null_when_empty=False)


def _profile_ids(nodes: Nodes, texts: NodeTexts, anchors: np.ndarray) -> pa.Array:
    """Stable opaque profile id: md5 of the anchor identity (the smallest identity of the profile)."""
    table = pa.table(
        {
            "i": np.arange(len(anchors), dtype=np.int64),
            "ns": pa.array(nodes.namespaces, pa.string()).take(pa.array(nodes.ns[anchors], pa.int32())),
            "id": texts.take(anchors),
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
    order = lexsort((events.order, events.time_ms, events.ingest_ms, row))
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


def _no_identities() -> IdentityRows:
    return IdentityRows(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int8))


@dataclass
class PartEvents:
    """The events of one part's rows: their system columns (and leaves when eventList is exported), and per
    event its output row within the part and its primary identity's node."""

    records: Records
    row: np.ndarray
    primary: np.ndarray

    @classmethod
    def from_columns(cls, dataset_ids: list[str], table: pa.Table, leaves: dict) -> PartEvents:
        """From a part file laid out as EVENT_SYSTEM (see Export.event_system_columns)."""
        col = {name: table.column(name).to_numpy() for name in EVENT_SYSTEM.names}
        records = Records(
            n=table.num_rows,
            dataset_ids=dataset_ids,
            dataset=col["dataset"],
            ingest_ms=col["ingest_ms"],
            order=col["order"],
            time_ms=col["time_ms"],
            identities=_no_identities(),
            primary_occ=np.zeros(0, dtype=np.int64),
            leaves=leaves,
        )
        return cls(records, col["row"], col["primary"])


EVENT_SYSTEM = pa.schema(
    [("event_idx", pa.int64()), ("row", pa.int64()), ("dataset", pa.int32()), ("ingest_ms", pa.int64()),
     ("order", pa.int64()), ("time_ms", pa.int64()), ("primary", pa.int64())]
)


@dataclass
class Export:
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
        if len(idx) < self.st.merged_n:  # else every fragment is merged: no copy
            take = pa.array(idx, pa.int64())
            leaves = [a.take(take) for a in leaves]
        columns = [pa.chunked_array([a]) for a in self.fragment_columns(idx, lo)]
        columns += [a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a]) for a in leaves]
        return pa.Table.from_arrays(columns, schema=self.plan.fragment_schema)

    def identity_row_columns(self, kind: str, idx: np.ndarray, lo: np.ndarray | int) -> list[pa.Array]:
        """Identity rows `idx` of the fragments or the events as IDENTITY_ROWS columns (row minus `lo`).
        Events rank below every fragment, so a fragment's authenticatedState wins over an event's."""
        if kind == "fragments":
            ids, occ_row, auth = self.st.frags.identities, self.f_occ_row, self.f_auth
            rank = self.ts_rank[ids.record[idx]]
        else:
            events = self.st.events
            ids, occ_row, auth = events.identities, self.e_occ_row, self.e_auth
            rank = events.order[ids.record[idx]] - events.n - 1
        a = auth[idx].astype(np.int32)
        return [
            pa.array(occ_row[idx] - lo, pa.int64()),
            pa.array(ids.node[idx], pa.int64()),
            pa.array(a, pa.int32(), mask=a < 0),
            pa.array(rank, pa.int64()),
        ]

    def identity_rows(self, lo: int, hi: int) -> pa.Table:
        """Identity occurrences of output rows [lo, hi): every fragment identity; event identities too under
        pdg (the whole component), only the event's primary identity under none (it is the profile's key)."""
        f = np.flatnonzero((self.f_occ_row >= lo) & (self.f_occ_row < hi))
        e = np.flatnonzero((self.e_occ_row >= lo) & (self.e_occ_row < hi))
        cols = [pa.concat_arrays([a, b]) for a, b in zip(self.identity_row_columns("fragments", f, lo),
                                                         self.identity_row_columns("events", e, lo), strict=True)]
        return pa.Table.from_arrays(cols, schema=IDENTITY_ROWS)

    def event_system_columns(self, idx: np.ndarray, lo: np.ndarray | int) -> list[pa.Array]:
        """Events `idx` as EVENT_SYSTEM columns (row minus `lo`)."""
        ev = self.st.events
        values = [idx, self.event_row[idx] - lo, ev.dataset[idx], ev.ingest_ms[idx], ev.order[idx], ev.time_ms[idx],
                  self.st.event_primary[idx]]
        return [pa.array(v, f.type) for v, f in zip(values, EVENT_SYSTEM, strict=True)]

    def part_events(self, lo: int, hi: int, leaves: Callable[[np.ndarray], dict]) -> PartEvents:
        """The events of output rows [lo, hi) from memory; leaves(event indices) gives their leaves."""
        sel = np.flatnonzero((self.event_row >= lo) & (self.event_row < hi))
        table = pa.Table.from_arrays(self.event_system_columns(sel, lo), schema=EVENT_SYSTEM)
        return PartEvents.from_columns(self.st.events.dataset_ids, table, leaves(sel))

    def release_fragments(self) -> None:
        """Drop what only the routing of the fragments needed (the identity rows still need ts_rank)."""
        empty = np.zeros(0, dtype=np.int64)
        self.st.frags.dataset = self.st.frags.ingest_ms = self.st.frag_primary = empty
        self.frag_row = self.merge_rank = empty

    def release(self) -> None:
        """Drop every per-record and per-identity array once the part files hold what the parts need."""
        empty = np.zeros(0, dtype=np.int64)
        st = self.st
        for r in (st.frags, st.events):
            r.dataset = r.ingest_ms = r.order = r.time_ms = r.primary_occ = empty
            r.identities = _no_identities()
        st.frag_primary = st.event_primary = empty
        self.frag_row = self.event_row = self.merge_rank = self.ts_rank = empty
        self.f_occ_row = self.e_occ_row = np.zeros(0, dtype=np.int32)
        self.f_auth = self.e_auth = np.zeros(0, dtype=np.int8)


def prepare(
    st: Stitched,
    query: ExportQuery,
    policy: MergePolicySpec,
    plan: MergePlan,
    event_fs: FileSet,
    park_dir: str | None = None,
) -> Export:
    """Choose the output rows and rank the fragments; with park_dir, the identity rows and the events wait
    on disk while that runs (park.py)."""
    frags, events, nodes = st.frags, st.events, st.nodes
    idle = [] if query.identity is not None else (  # a lookup under `none` reads the identity rows
        [(frags.identities, IDENTITY_ARRAYS)] + index_arrays(events, records=("dataset", "ingest_ms", "order", "time_ms"))
    )
    with parked(park_dir, idle):
        anchors, excluded = select_anchors(st, query)
        row_of_node = np.full(nodes.count, -1, dtype=index_dtype(len(anchors)))
        row_of_node[anchors] = np.arange(len(anchors), dtype=row_of_node.dtype)
        frag_row = at(row_of_node, st.frag_anchor)
        event_row = at(row_of_node, st.event_anchor)
        del row_of_node
        # Linking fragments lend their identities to their component's row but merge into none.
        link_row = frag_row[st.merged_n :].copy() if st.merged_n < frags.n else None
        frag_row[st.merged_n :] = -1
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
    if link_row is not None and len(fid.record):
        linking = fid.record >= st.merged_n
        f_occ_row[linking] = link_row[fid.record[linking] - st.merged_n]
        del linking, link_row
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
    return Export(
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


def build_part(
    x: Export,
    backend: Backend,
    k: int,
    parts: int,
    lo: int,
    hi: int,
    fragments: Callable[[], pa.Table],
    identity_rows: pa.Table,
    events: PartEvents,
    texts: NodeTexts,
    check: Callable[[], None],
    stage: Callable[[str], None] = lambda name: None,
) -> MergeResultPart:
    """Merge, filter and project the output rows [lo, hi) (fragments: gives their fragments table, held by
    no one else so it is freed once merged; identity_rows: their identity occurrences as IDENTITY_ROWS;
    events: the events of those rows, with their leaves when eventList is asked for; texts: the ids of at
    least the nodes of those rows)."""
    st, query, nodes = x.st, x.query, x.st.nodes
    n_cand = hi - lo
    per_profile, merged = run_attribute_merge(backend, x.plan, fragments())
    stage(f"part {k} attribute merge")
    union = run_identity_union(backend, identity_rows)
    del identity_rows
    check()
    stage(f"part {k} identity union")

    # Per candidate profile: its merge row (none for empty profiles) and its newest event.
    part_events, event_row = events.records, events.row
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
        at(events.primary, newest_event),
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
        ("identityMap", identity_map(u_profile, u_node, u_auth, x.auth_values, rep_node, nodes, texts, n))
    ]
    out_keep = Selector(query.fields)
    legacy = wants_legacy_identities(query.fields)
    columns += [
        (name, col)
        for name, col in unflatten({p: a for p, a in merged.items() if out_keep.wants(p)}, n)
        if name != "identityMap" and not (legacy and name == "identities")
    ]
    if legacy:
        columns.append(("identities", legacy_identities(u_profile, u_node, rep_node, nodes, texts, n)))
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
        entity_id = texts.take(rep_node)
    sources = per_profile.column("sources").combine_chunks()
    sources = _sorted_lists(sources if rows is None else sources.take(rows), n)
    sources = pa.ListArray.from_arrays(
        sources.offsets, pa.array(st.frags.dataset_ids, pa.string()).take(sources.values)
    )
    meta = pa.table(
        {
            "profile_id": _profile_ids(nodes, texts, x.anchors[lo:hi][kept]),
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
        fragments_read=st.merged_n,  # records of merged datasets: linking ones are read for the graph only
        events_read=st.events.n,
    )
