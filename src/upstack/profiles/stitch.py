"""Assign every fragment and event to a profile: load both kinds, stitch identities, pick the profiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .identity import Nodes, component_anchors, encode_nodes, primary_nodes, record_edges, upsert_survivors
from .load import Records, Selector, load_records
from .model import ComponentTooLarge, DatasetInput, ExportQuery, MergePolicySpec


def at(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
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


def stitch(
    inputs: Sequence[DatasetInput],
    policy: MergePolicySpec,
    frag_keep: Selector,
    event_keep: Selector,
    load_events: bool,
    check: Callable[[], None],
) -> Stitched:
    """Load both kinds of records and assign each to a profile under the policy's identity graph."""
    profile_inputs = [d for d in inputs if d.kind == "profile"]
    if policy.attribute_merge == "dataSetPrecedence":
        # Datasets outside `order` are not merged at all: neither attributes nor identities.
        profile_inputs = [d for d in profile_inputs if d.dataset_id in policy.order]
    event_inputs = [d for d in inputs if d.kind == "event"] if load_events else []
    frags = load_records(
        profile_inputs, "profile", frag_keep, skip_identity_map_leaves=True, should_cancel=check
    )
    events = load_records(
        event_inputs, "event", event_keep, skip_identity_map_leaves=False, should_cancel=check
    )
    check()
    nodes, (frag_rn, event_rn) = encode_nodes(frags, events)
    frag_primary = primary_nodes(frags.identities, frag_rn, frags.n)
    survive = upsert_survivors(frags, frag_primary)
    event_primary = primary_nodes(events.identities, event_rn, events.n)
    size_of_node = None
    if policy.identity_graph == "pdg":
        anchor_of_node, size_of_node = component_anchors(
            nodes.count,
            [
                record_edges(frags.identities, frag_rn, frag_primary, survive),
                record_edges(events.identities, event_rn, event_primary, None),
            ],
        )
    else:
        anchor_of_node = np.arange(nodes.count, dtype=np.int64)
    frag_anchor = np.where(survive, at(anchor_of_node, frag_primary), -1)
    event_anchor = at(anchor_of_node, event_primary)
    check()
    return Stitched(
        frags,
        events,
        nodes,
        frag_rn,
        event_rn,
        frag_primary,
        event_primary,
        frag_anchor,
        event_anchor,
        anchor_of_node,
        size_of_node,
    )


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
