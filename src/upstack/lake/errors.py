"""Exceptions raised by the data lake, so callers can map each one to an answer without parsing text."""

from __future__ import annotations

import errno


class LakeError(Exception):
    """Base class of everything `upstack.lake` raises on purpose."""


class UnsafePath(LakeError, ValueError):
    """A client-supplied path or name that could escape its directory or is not storable."""


class TooLarge(LakeError):
    """An upload went past its byte limit; nothing was kept."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"upload exceeds the limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


class UnreadableFile(LakeError):
    """A whole file is not in its declared format, so none of its rows can be read (the batch fails)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RefusedFile(LakeError):
    """A readable file whose records all break a bound (its schema is too deep or too wide): the batch fails
    with `code` (FILE-TOO-DEEP, FILE-TOO-WIDE) and `reason`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def is_disk_full(exc: BaseException) -> bool:
    """The file system under the lake has no space (or quota) left: the request is fine, the machine is not."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
