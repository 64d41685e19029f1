"""Assign every fragment and event to a profile: load both kinds, stitch identities, pick the profiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from .identity import (
    Nodes,
    component_anchors,
    component_sizes,
    encode_nodes,
    encode_spilled,
    primary_nodes,
    record_edges,
    upsert_survivors,
)
from .load import FileSet, Records, index_arrays, load_records
from .model import ComponentTooLarge, DatasetInput, ExportQuery, MergePolicySpec
from .park import parked
from .sorting import index_dtype
from .textsort import TextSpill

Components = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


def at(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """table[idx] where idx >= 0, else -1 (tolerates an empty table)."""
    out = np.full(len(idx), -1, dtype=table.dtype if table.dtype.kind == "i" else np.int64)
    ok = idx >= 0
    out[ok] = table[idx[ok]]
    return out


@dataclass
class Stitched:
    """Fragments and events with every record assigned to a profile anchor (a node, or -1). Fragments from
    `merged_n` on are linking records (FileSet.linking_files): they join identities into components and
    lend them their identities, but are merged into no profile and make none."""

    frags: Records
    events: Records
    nodes: Nodes
    frag_primary: np.ndarray  # primary node per fragment
    event_primary: np.ndarray
    frag_anchor: np.ndarray  # -1: replaced by upsert or without identity
    event_anchor: np.ndarray
    anchor_of_node: np.ndarray
    size_of_node: np.ndarray | None  # pdg only: identities in the node's component
    merged_n: int  # fragments [0, merged_n) are merged; the rest only link identities


def stitch(
    frag_fs: FileSet,
    event_fs: FileSet,
    policy: MergePolicySpec,
    with_leaves: bool,
    check: Callable[[], None],
    components: Components = component_anchors,
    stage: Callable[[str], None] = lambda name: None,
    spill: TextSpill | None = None,
    spill_memory_limit: str = "1GB",
    lookup: tuple[str, str] | None = None,
) -> Stitched:
    """Load both kinds of records (with their leaves, or only the index) and assign each to a profile under
    the policy's identity graph; `components` computes the pdg connected components. With a `spill`, the
    ids go to disk and DuckDB numbers them within `spill_memory_limit` (textsort.py); `lookup` is then the
    identity Nodes.find will be asked for."""
    frags = load_records(frag_fs, with_leaves=with_leaves, check=check, spill=spill)
    with parked(spill.directory if spill is not None else None, index_arrays(frags)):  # while the events are read
        events = load_records(event_fs, with_leaves=with_leaves, check=check, spill=spill, side=1)
    check()
    stage("read")
    if spill is None:
        nodes = encode_nodes(frags, events)
    else:
        nodes = encode_spilled(spill, spill_memory_limit, frags, events, lookup=lookup)
    stage("identity numbering")
    frag_primary = primary_nodes(frags)
    survive = upsert_survivors(frags, frag_primary)
    event_primary = primary_nodes(events)
    frags.primary_occ = events.primary_occ = np.zeros(0, dtype=np.int64)  # now in the *_primary nodes
    size_of_node = None
    if policy.identity_graph == "pdg":
        fa, fb = record_edges(frags.identities, frag_primary, survive)
        ea, eb = record_edges(events.identities, event_primary, None)
        a, b = np.concatenate([fa, ea]), np.concatenate([fb, eb])
        del fa, fb, ea, eb
        # The components need only the edges: everything else waits on disk when there is a temp directory.
        idle = SimpleNamespace(frag_primary=frag_primary, event_primary=event_primary, survive=survive)
        del frag_primary, event_primary, survive
        arrays = index_arrays(frags) + index_arrays(events) + [(idle, ("frag_primary", "event_primary", "survive"))]
        with parked(spill.directory if spill is not None else None, arrays):
            anchor_of_node = components(nodes.count, a, b)
            del a, b
            size_of_node = component_sizes(anchor_of_node)
        frag_primary, event_primary, survive = idle.frag_primary, idle.event_primary, idle.survive
        stage("connected components")
    else:
        anchor_of_node = np.arange(nodes.count, dtype=index_dtype(nodes.count))
    frag_anchor = np.where(survive, at(anchor_of_node, frag_primary), -1)
    event_anchor = at(anchor_of_node, event_primary)
    check()
    return Stitched(
        frags, events, nodes, frag_primary, event_primary, frag_anchor, event_anchor, anchor_of_node, size_of_node,
        frag_fs.merged_n,
    )


def profile_inputs(inputs: Sequence[DatasetInput], policy: MergePolicySpec) -> list[DatasetInput]:
    """The profile datasets a policy merges: under dataSetPrecedence only those in `order`."""
    chosen = [d for d in inputs if d.kind == "profile"]
    if policy.attribute_merge == "dataSetPrecedence":
        chosen = [d for d in chosen if d.dataset_id in policy.order]
    return chosen


def linking_inputs(inputs: Sequence[DatasetInput], policy: MergePolicySpec) -> list[DatasetInput]:
    """The profile datasets a policy does not merge but whose records still link identities: under `pdg`,
    AEP builds the private graph from every profile-enabled dataset, and the merge policy only chooses whose
    attributes count (CONTRACT §6). Under `none` there is no graph, so they are not read at all."""
    if policy.identity_graph != "pdg" or policy.attribute_merge != "dataSetPrecedence":
        return []
    return [d for d in inputs if d.kind == "profile" and d.dataset_id not in policy.order]


def _present(anchor: np.ndarray, n: int) -> np.ndarray:
    mark = np.zeros(n, dtype=bool)
    mark[anchor[anchor >= 0]] = True
    return mark


def _lookup_anchor(st: Stitched, identity: tuple[str, str], limit: int, existing: np.ndarray) -> np.ndarray:
    node = st.nodes.find(*identity)
    if node < 0:
        return np.zeros(0, dtype=np.int64)
    if st.size_of_node is not None:
        if st.size_of_node[node] > limit:
            raise ComponentTooLarge(
                f"identity graph of {identity[0]}:{identity[1]} has "
                f"{int(st.size_of_node[node])} identities (limit {limit})"
            )
        anchor = st.anchor_of_node[node]
        return np.asarray([anchor] if np.isin(anchor, existing) else [], dtype=np.int64)
    if np.isin(node, existing):
        return np.asarray([node], dtype=np.int64)
    # Graph "none": a secondary identity finds the (smallest) profile whose surviving fragments list it.
    rows = st.frags.identities.node == node
    owners = st.frag_anchor[st.frags.identities.record[rows]]
    owners = owners[owners >= 0]
    return np.asarray([owners.min()] if len(owners) else [], dtype=np.int64)


def select_anchors(st: Stitched, query: ExportQuery) -> tuple[np.ndarray, int]:
    """The profiles to build (sorted anchors) and the number of oversized pdg components left out."""
    with_fragments = _present(st.frag_anchor[: st.merged_n], st.nodes.count)  # linking records make no profile
    with_any = with_fragments | _present(st.event_anchor, st.nodes.count)
    if query.identity is not None:
        # A lookup always answers an events-only identity with its empty profile.
        existing = np.flatnonzero(with_any)
        return _lookup_anchor(st, query.identity, query.max_component_identities, existing), 0
    anchors = np.flatnonzero(with_any if query.empty_profiles else with_fragments)
    if st.size_of_node is None:
        return anchors, 0
    too_big = st.size_of_node[anchors] > query.max_component_identities
    return anchors[~too_big], int(too_big.sum())
