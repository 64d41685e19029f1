"""The merge engine: lake Parquet files in, merged and projected profiles out as Arrow tables (pure)."""

from .engine import iter_merge_profiles, merge_profiles, profile_events, split_by_segment
from .model import (
    ComponentTooLarge,
    DatasetInput,
    ExportCancelled,
    ExportQuery,
    MergePolicySpec,
    MergeResult,
    MergeResultPart,
    SegmentFilter,
)

__all__ = [
    "ComponentTooLarge",
    "DatasetInput",
    "ExportCancelled",
    "ExportQuery",
    "MergePolicySpec",
    "MergeResult",
    "MergeResultPart",
    "SegmentFilter",
    "iter_merge_profiles",
    "merge_profiles",
    "profile_events",
    "split_by_segment",
]
