"""The data lake: where uploaded files land, how they become validated Parquet, and how batches are published."""

from upstack.lake.errors import LakeError, RefusedFile, TooLarge, UnreadableFile, UnsafePath, is_disk_full
from upstack.lake.layout import (
    Lake,
    PendingUpload,
    PublishedFile,
    UploadedFile,
    owner_tag,
    parse_owner_tag,
    safe_segment,
    validate_upload_path,
)
from upstack.lake.parquet import read_preview, schema_of, write_table
from upstack.lake.records import Converted, convert_file
from upstack.lake.rows import (
    EVENT_TIMESTAMP,
    IDENTITY_ITEM,
    MAX_IDENTITIES,
    SYSTEM_COLUMN,
    SYSTEM_TYPE,
    RowError,
)
from upstack.lake.shape import Bounds

__all__ = [
    "Bounds",
    "EVENT_TIMESTAMP",
    "IDENTITY_ITEM",
    "MAX_IDENTITIES",
    "SYSTEM_COLUMN",
    "SYSTEM_TYPE",
    "Converted",
    "Lake",
    "PendingUpload",
    "LakeError",
    "PublishedFile",
    "RefusedFile",
    "RowError",
    "TooLarge",
    "UnreadableFile",
    "UnsafePath",
    "UploadedFile",
    "convert_file",
    "is_disk_full",
    "owner_tag",
    "parse_owner_tag",
    "read_preview",
    "safe_segment",
    "schema_of",
    "validate_upload_path",
    "write_table",
]
