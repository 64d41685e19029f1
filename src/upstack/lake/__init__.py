"""The data lake: where uploaded files land, how they become validated Parquet, and how batches are published."""

from upstack.lake.errors import LakeError, TooLarge, UnreadableFile, UnsafePath
from upstack.lake.layout import Lake, PublishedFile, UploadedFile, safe_segment, validate_upload_path

__all__ = [
    "Lake",
    "LakeError",
    "PublishedFile",
    "TooLarge",
    "UnreadableFile",
    "UnsafePath",
    "UploadedFile",
    "safe_segment",
    "validate_upload_path",
]
