"""Plain dataclasses and exceptions that make up the merge engine's public vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa


@dataclass(frozen=True)
class DatasetInput:
    """The published lake files of one profile-enabled dataset."""

    dataset_id: str
    kind: Literal["profile", "event"]
    files: tuple[str, ...]  # Parquet paths, any order
    # Per file (same order), the rows to read, ascending; None (or a None entry) reads every row. A lookup
    # gives the rows of one identity component (the profile store's fragment index), so the engine reads
    # and merges only them; everything else about the merge is the same.
    rows: tuple[tuple[int, ...] | None, ...] | None = None

    def selection(self) -> dict[str, tuple[int, ...]]:
        """path -> rows, for the files read in part."""
        if self.rows is None:
            return {}
        return {f: r for f, r in zip(self.files, self.rows, strict=True) if r is not None}


@dataclass(frozen=True)
class MergePolicySpec:
    """The parts of an AEP merge policy that change the merge result."""

    identity_graph: Literal["none", "pdg"] = "none"
    attribute_merge: Literal["timestampOrdered", "dataSetPrecedence"] = "timestampOrdered"
    order: tuple[str, ...] = ()  # dataset ids, highest precedence first (dataSetPrecedence only)


@dataclass(frozen=True)
class SegmentFilter:
    segment_id: str
    segment_ns: str = "ups"
    statuses: tuple[str, ...] = ("realized", "existing")


@dataclass(frozen=True)
class ExportQuery:
    """What to export: projection, events, filters, or a single-profile lookup."""

    fields: tuple[str, ...] | None = None  # dot paths, each selects a subtree; None = all
    include_events: bool = False
    event_fields: tuple[str, ...] | None = None  # projection of events; None = all event fields
    event_from_ingest_ms: int | None = None  # events ingested at/after (>=)
    event_to_ingest_ms: int | None = None  # events ingested before/at (<=)
    segments: tuple[SegmentFilter, ...] = ()
    segment_qualification_start_ms: int | None = None
    segment_qualification_end_ms: int | None = None
    from_ingest_ms: int | None = None  # keep profiles with a fragment ingested at/after it
    empty_profiles: bool = False  # profiles made only of events exported only if True
    identity: tuple[str, str] | None = None  # (namespace, id): only the profile containing it
    max_component_identities: int = 50


@dataclass
class MergeResult:
    """Merged profiles plus per-row metadata and the counters an export job reports."""

    profiles: pa.Table
    meta: pa.Table
    excluded_components: int = 0
    by_namespace: dict[str, int] = field(default_factory=dict)
    fragments_read: int = 0
    events_read: int = 0


@dataclass
class MergeResultPart:
    """One part of a streamed merge (see iter_merge_profiles): its rows follow the previous part's rows.

    `by_namespace` counts this part's rows; the other counters are the whole export's so far: the last part
    (`part == parts - 1`) has the export's totals."""

    profiles: pa.Table
    meta: pa.Table
    part: int = 0
    parts: int = 1
    by_namespace: dict[str, int] = field(default_factory=dict)
    excluded_components: int = 0
    fragments_read: int = 0
    events_read: int = 0


class ExportCancelled(Exception):
    """The caller's should_cancel() answered True at a checkpoint."""


class ComponentTooLarge(Exception):
    """A lookup hit an identity graph component above max_component_identities."""
