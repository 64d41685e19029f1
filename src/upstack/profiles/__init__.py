"""The merge engine: lake Parquet files in, merged and projected profiles out as Arrow tables (pure)."""

from .engine import merge_profiles, profile_events, split_by_segment
from .model import (
    ComponentTooLarge,
    DatasetInput,
    ExportCancelled,
    ExportQuery,
    MergePolicySpec,
    MergeResult,
    SegmentFilter,
)

__all__ = [
    "ComponentTooLarge",
    "DatasetInput",
    "ExportCancelled",
    "ExportQuery",
    "MergePolicySpec",
    "MergeResult",
    "SegmentFilter",
    "merge_profiles",
    "profile_events",
    "split_by_segment",
]
