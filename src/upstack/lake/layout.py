"""The data lake's one on-disk layout, and the only code that creates, moves or deletes files in it.

Under the lake's ``root``::

    uploads/<org>/<sandbox>/<batch_id>/<dataset_id>/<relative path>   raw files exactly as the client sent them
    lake/_staging/<batch_id>.<random>/                                a job's output while it is being written
    lake/<org>/<sandbox>/<dataset_id>/<batch_id>/<file_id>/part-00000.parquet ...   published batch files
    tmp/                                                              half-written uploads, trees being deleted

``file_id`` is the Data Access ``dataSetFileId`` chosen by the caller (e.g. ``<batch_id>-1``). Every
org, sandbox and id segment goes through `safe_segment`, which also keeps tenant names from starting
with ``_`` so they can never collide with ``_staging``. Staging and ``tmp`` live on the same filesystem
as the data so that publishing, replacing and deleting are renames: a reader sees a whole ``file_id``
directory (or a whole upload) or nothing, never a half-written one.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import unquote

from upstack.lake.errors import LakeError, TooLarge, UnsafePath

MAX_UPLOAD_PATH_CHARS = 1024
# Linux refuses names longer than 255 bytes; checking here turns an OSError into a 400.
MAX_NAME_BYTES = 255
# Long enough for any real org/sandbox/id, short enough to stay under MAX_NAME_BYTES once encoded.
_MAX_SEGMENT_CHARS = 200
_CHUNK = 1 << 20

_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9@.-][A-Za-z0-9@._-]*")
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@._-")
# C0 and C1 control characters (NUL included): never meaningful in a file name, often an attack.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"[A-Za-z]:")
UPLOAD_PREFIX = "upload-"
_REMOVED, _REPLACED = "removed-", "replaced-"
_DOOMED_PREFIXES = (_REMOVED, _REPLACED)
# "j<job id>a<attempt>.": the job run that owns a staging or scratch directory.
_OWNER = re.compile(r"^(j\d+a\d+)\.")


def owner_tag(job_id: int, attempt: int) -> str:
    """The name prefix of a job run's staging and scratch directories (parsed back by the sweep)."""
    return f"j{job_id}a{attempt}"


def parse_owner_tag(tag: str) -> tuple[int, int]:
    job, _, attempt = tag[1:].partition("a")
    return int(job), int(attempt)


class UploadedFile(NamedTuple):
    dataset_id: str
    relpath: str
    size: int
    path: Path


class PublishedFile(NamedTuple):
    file_id: str
    name: str
    size: int
    path: Path


class PendingUpload:
    """An upload being received into a locked temp file, not yet part of its batch (see `Lake.begin_upload`)."""

    def __init__(self, dataset_id: str, relpath: str, tmp: Path, dest: Path, lock_fd: int, out: BinaryIO,
                 max_bytes: int):
        self.dataset_id, self.relpath, self.tmp, self.dest = dataset_id, relpath, tmp, dest
        self.max_bytes = max_bytes
        self.size = 0
        self._out: BinaryIO | None = out
        self._fd: int | None = lock_fd

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.max_bytes:
            raise TooLarge(self.max_bytes)
        assert self._out is not None, "write after finish"
        self._out.write(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        """Every byte on disk (a crash after the commit must not publish a short file)."""
        if self._out is not None:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            self._out = None

    def commit(self) -> UploadedFile:
        """Rename the finished upload into its batch (replacing an earlier upload of the same path)."""
        self.finish()
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp, self.dest)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            self.discard()
            raise UnsafePath(f"'{self.relpath}' conflicts with another file of this batch") from None
        except BaseException:
            self.discard()
            raise
        self._release()
        return UploadedFile(self.dataset_id, self.relpath, self.size, self.dest)

    def discard(self) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except OSError:  # a full disk may refuse the last flush too
                pass
            self._out = None
        self.tmp.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also drops the flock
            self._fd = None

    def __enter__(self) -> PendingUpload:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()  # after commit() the temp file is gone already: this only releases the lock


def safe_segment(name: str) -> str:
    """Encode an org, sandbox or id as one directory name: injective, never empty, never ``.``/``..``."""
    if not isinstance(name, str) or not name:
        raise UnsafePath("a name in the lake layout cannot be empty")
    if _SAFE_SEGMENT.fullmatch(name) and name not in (".", ".."):
        encoded = name
    elif name in (".", ".."):
        encoded = "%2E" * len(name)
    else:
        # A leading "_" is encoded too: names starting with "_" belong to the lake (`_staging`).
        encoded = "".join(
            c if c in _SAFE_CHARS and not (i == 0 and c == "_") else _percent(c) for i, c in enumerate(name)
        )
    if len(encoded) > _MAX_SEGMENT_CHARS:
        # "~" never appears in an encoded name, so a hashed name cannot collide with a plain one.
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        encoded = f"{encoded[:150]}~{digest}"
    return encoded


def _percent(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


def validate_upload_path(path: str) -> str:
    """Return the normalised relative path of an uploaded file, or raise `UnsafePath`.

    Backslashes count as separators (Windows clients send them), ``.`` segments are dropped; ``..``,
    absolute paths, empty segments, control characters and overlong names are refused.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePath("the file path is empty")
    if len(path) > MAX_UPLOAD_PATH_CHARS:
        raise UnsafePath(f"the file path is longer than {MAX_UPLOAD_PATH_CHARS} characters")
    if _CONTROL.search(path):
        raise UnsafePath("the file path contains a control character")
    normal = path.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal):
        raise UnsafePath("the file path must be relative")
    parts = []
    for segment in normal.split("/"):
        if segment == "":
            raise UnsafePath("the file path has an empty segment")
        if segment == "..":
            raise UnsafePath("the file path may not contain '..'")
        if segment == ".":
            continue
        try:
            size = len(segment.encode("utf-8"))
        except UnicodeEncodeError:
            raise UnsafePath("the file path is not valid UTF-8") from None
        if size > MAX_NAME_BYTES:
            raise UnsafePath(f"a name in the file path is longer than {MAX_NAME_BYTES} bytes")
        parts.append(segment)
    if not parts:
        raise UnsafePath("the file path names no file")
    return "/".join(parts)


class Lake:
    """Paths and atomic moves for one lake root; holds no state besides the root, so any process may use one."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._uploads = self.root / "uploads"
        self._lake = self.root / "lake"
        self._staging = self._lake / "_staging"
        self._tmp = self.root / "tmp"

    # -- uploads -------------------------------------------------------------------------------------

    def upload_path(self, org: str, sandbox: str, batch: str, dataset: str, relpath: str) -> Path:
        return (
            self._batch_uploads(org, sandbox, batch) / safe_segment(dataset) / validate_upload_path(relpath)
        )

    def write_upload(
        self,
        org: str,
        sandbox: str,
        batch: str,
        dataset: str,
        relpath: str,
        data: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes],
        *,
        max_bytes: int,
    ) -> UploadedFile:
        """Store one uploaded file whole: a re-PUT of the same path replaces it, an oversize one leaves nothing."""
        if isinstance(data, bytes | bytearray | memoryview) and len(data) > max_bytes:
            raise TooLarge(max_bytes)
        with self.begin_upload(org, sandbox, batch, dataset, relpath, max_bytes=max_bytes) as pending:
            for chunk in _chunks(data):
                pending.write(chunk)
            return pending.commit()

    def begin_upload(self, org: str, sandbox: str, batch: str, dataset: str, relpath: str, *,
                     max_bytes: int) -> PendingUpload:
        """Start receiving an upload beside the data, not in place: nothing is visible until `commit()` renames
        it into the batch, so the caller decides (under the batch's lock) whether it still belongs there.

        While pending, the temp file is held under an exclusive `flock`: the sweep removes only temp uploads
        whose writer is gone (the lock dies with its process), never one being written.
        """
        rel = validate_upload_path(relpath)
        dest = self.upload_path(org, sandbox, batch, dataset, rel)
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=UPLOAD_PREFIX)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            out = os.fdopen(os.dup(fd), "wb")
        except BaseException:
            os.close(fd)
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return PendingUpload(dataset, rel, Path(tmp_name), dest, fd, out, max_bytes)

    def list_uploads(self, org: str, sandbox: str, batch: str) -> list[UploadedFile]:
        base = self._batch_uploads(org, sandbox, batch)
        found = []
        for dataset_dir in _subdirs(base):
            for dirpath, _dirs, files in os.walk(dataset_dir):
                for name in files:
                    path = Path(dirpath) / name
                    try:
                        size = path.stat().st_size
                    except FileNotFoundError:  # replaced or removed while we listed
                        continue
                    rel = path.relative_to(dataset_dir).as_posix()
                    found.append(UploadedFile(unquote(dataset_dir.name), rel, size, path))
        return sorted(found, key=lambda f: (f.dataset_id, f.relpath))

    def remove_uploads(self, org: str, sandbox: str, batch: str) -> bool:
        return self._remove_tree(self._batch_uploads(org, sandbox, batch))

    # -- staging and publishing ----------------------------------------------------------------------

    def new_staging(self, batch_id: str, owner: str | None = None) -> Path:
        """A private directory for a job's output. `owner` (see `owner_tag`) names the job run it belongs
        to, so the sweep can tell a live job's staging from a dead one's."""
        self._staging.mkdir(parents=True, exist_ok=True)
        prefix = f"{owner}." if owner else ""
        path = self._staging / f"{prefix}{safe_segment(batch_id)}.{secrets.token_hex(8)}"
        path.mkdir()
        return path

    def new_temp_dir(self, owner: str) -> Path:
        """Scratch space of one job run (the merge's spill files, DuckDB's temp files), swept like staging."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        path = self._tmp / f"{owner}.{secrets.token_hex(8)}"
        path.mkdir()
        return path

    def remove_temp_dir(self, path: Path) -> None:
        path = Path(path)
        if path.parent.resolve() == self._tmp.resolve():
            shutil.rmtree(path, ignore_errors=True)

    def publish(
        self, staging_dir: Path, org: str, sandbox: str, dataset: str, batch: str, file_id: str
    ) -> list[PublishedFile]:
        """Move a staging directory into place as one ``file_id`` in a single rename.

        If the ``file_id`` is already published (a job re-run after a crash), the new directory
        replaces it, atomically where the kernel can exchange two directories.
        """
        staging_dir = self._own_staging(staging_dir)
        _fsync_tree(staging_dir)
        target = self._batch_dir(org, sandbox, dataset, batch) / safe_segment(file_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Succeeds when the target is absent (or an empty directory).
            os.rename(staging_dir, target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            self._replace_dir(staging_dir, target)
        _fsync_dir(target.parent)
        return self._files_of(target)

    def discard_staging(self, path: Path) -> None:
        shutil.rmtree(self._own_staging(path), ignore_errors=True)

    def sweep(self, owner_alive: Callable[[str], bool], *, unowned_older_than_s: float) -> list[str]:
        """Remove what crashed processes left in staging and tmp; returns the names removed.

        - job staging and scratch dirs (`owner_tag` names): removed when `owner_alive(tag)` says that job run
          no longer holds its lease;
        - temp uploads: removed when no process holds their lock (the writer died);
        - trees renamed away for deletion: removed (they are garbage by construction);
        - anything else (written by an older version): removed once older than `unowned_older_than_s`.
        """
        removed = []
        cutoff = time.time() - unowned_older_than_s
        for parent in (self._staging, self._tmp):
            for entry in _entries(parent):
                name = entry.name
                owner = _OWNER.match(name)
                if owner is not None:
                    doomed = not owner_alive(owner.group(1))
                elif name.startswith(UPLOAD_PREFIX):
                    doomed = not _locked(entry)
                elif name.startswith(_DOOMED_PREFIXES):
                    doomed = True
                else:
                    try:
                        doomed = entry.lstat().st_mtime < cutoff
                    except FileNotFoundError:
                        continue
                if doomed:
                    _delete(entry)
                    removed.append(f"{parent.name}/{name}")
        return removed

    # -- published files -----------------------------------------------------------------------------

    def published_files(self, org: str, sandbox: str, dataset: str, batch: str) -> list[PublishedFile]:
        files = []
        for file_dir in _subdirs(self._batch_dir(org, sandbox, dataset, batch)):
            files.extend(self._files_of(file_dir))
        return files

    def published_file(
        self, org: str, sandbox: str, dataset: str, batch: str, file_id: str, name: str
    ) -> Path | None:
        """The path of one published file by the name a client asked for, or None; never outside the lake."""
        if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", ".."):
            return None
        if _CONTROL.search(name):
            return None
        path = self._batch_dir(org, sandbox, dataset, batch) / safe_segment(file_id) / name
        return path if path.is_file() else None

    def dataset_files(self, org: str, sandbox: str, dataset: str) -> list[Path]:
        """Every published Parquet file of a dataset, in batch, file id and name order."""
        base = self._lake / safe_segment(org) / safe_segment(sandbox) / safe_segment(dataset)
        return sorted(p for p in base.glob("*/*/*.parquet") if p.is_file())

    # -- removal -------------------------------------------------------------------------------------

    def remove_batch(self, org: str, sandbox: str, dataset: str, batch: str) -> None:
        self._remove_tree(self._batch_dir(org, sandbox, dataset, batch))
        self.remove_uploads(org, sandbox, batch)

    def remove_dataset(self, org: str, sandbox: str, dataset: str) -> None:
        self._remove_tree(self._lake / safe_segment(org) / safe_segment(sandbox) / safe_segment(dataset))
        # Uploads are filed by batch first; a dataset's share is one folder inside each of its batches.
        for batch_dir in _subdirs(self._uploads / safe_segment(org) / safe_segment(sandbox)):
            self._remove_tree(batch_dir / safe_segment(dataset))
            try:
                batch_dir.rmdir()
            except OSError:  # other datasets' uploads are still there
                pass

    def remove_tenant(self, org: str, sandbox: str | None) -> None:
        """Remove one sandbox of an org, or every sandbox of it when `sandbox` is None."""
        for top in (self._uploads, self._lake):
            tenant = top / safe_segment(org)
            self._remove_tree(tenant / safe_segment(sandbox) if sandbox is not None else tenant)

    def remove_all(self) -> None:
        """Empty the lake (the admin reset); the root itself stays, it may be a mount point."""
        for top in (self._uploads, self._lake):
            self._remove_tree(top)
        shutil.rmtree(self._tmp, ignore_errors=True)

    # -- health --------------------------------------------------------------------------------------

    def is_usable(self) -> bool:
        """True when the root exists and a file can really be written there (read-only mounts, full disks)."""
        if not self.root.is_dir():
            return False
        try:
            self._tmp.mkdir(exist_ok=True)
            with tempfile.TemporaryFile(dir=self._tmp) as probe:
                probe.write(b"ok")
                probe.flush()
        except OSError:
            return False
        return True

    # -- internals -----------------------------------------------------------------------------------

    def _batch_uploads(self, org: str, sandbox: str, batch: str) -> Path:
        return self._uploads / safe_segment(org) / safe_segment(sandbox) / safe_segment(batch)

    def _batch_dir(self, org: str, sandbox: str, dataset: str, batch: str) -> Path:
        return (
            self._lake
            / safe_segment(org)
            / safe_segment(sandbox)
            / safe_segment(dataset)
            / safe_segment(batch)
        )

    def _own_staging(self, path: Path) -> Path:
        # Publishing or discarding a path from elsewhere would move or delete foreign files.
        path = Path(path)
        if path.parent.resolve() != self._staging.resolve() or not path.is_dir():
            raise LakeError(f"{path} is not a staging directory of this lake")
        return path

    def _files_of(self, file_dir: Path) -> list[PublishedFile]:
        # A republish can swap the directory (and delete the old one) while we read it, which would
        # give a partial listing. We read through a descriptor and keep the answer only if the path
        # still names that same directory afterwards; otherwise the listing is retried.
        file_id = unquote(file_dir.name)
        files: list[PublishedFile] = []
        for _attempt in range(20):
            try:
                fd = os.open(file_dir, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError):
                return []
            try:
                opened = os.fstat(fd)
                files = []
                with os.scandir(fd) as entries:
                    for entry in entries:
                        if entry.is_file(follow_symlinks=False):
                            size = entry.stat(follow_symlinks=False).st_size
                            files.append(PublishedFile(file_id, entry.name, size, file_dir / entry.name))
                current = os.stat(file_dir)
            except FileNotFoundError:
                continue
            finally:
                os.close(fd)
            if (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
                break
        return sorted(files)

    def _replace_dir(self, new: Path, target: Path) -> None:
        if _exchange is not None:
            try:
                _exchange(new, target)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
            else:
                shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old contents
                return
        # No atomic exchange here: for a moment the file id is absent, never half-written.
        self._tmp.mkdir(parents=True, exist_ok=True)
        old = self._tmp / f"{_REPLACED}{secrets.token_hex(8)}"
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)

    def _remove_tree(self, path: Path) -> bool:
        # Renamed away first so readers see the whole tree or nothing while the slow delete runs.
        self._tmp.mkdir(parents=True, exist_ok=True)
        doomed = self._tmp / f"{_REMOVED}{secrets.token_hex(8)}"
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return False
        shutil.rmtree(doomed, ignore_errors=True)
        return True


def _chunks(data: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]) -> Iterable[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield data
    elif hasattr(data, "read"):
        while chunk := data.read(_CHUNK):
            yield chunk
    else:
        yield from data


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _subdirs(directory: Path) -> list[Path]:
    return [p for p in _entries(directory) if p.is_dir()]


def _locked(path: Path) -> bool:
    """Whether another open file description holds an flock on `path` (its writer is alive)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, IsADirectoryError):
        return True  # gone already, or not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return False


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_tree(directory: Path) -> None:
    # Data must be on disk before the rename that makes it visible, or a crash could publish empty files.
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_exchange():
    """renameat2(RENAME_EXCHANGE) swaps two directories in one step (Linux >= 3.15); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a: Path, b: Path) -> None:
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(a))

    return exchange


_exchange = _load_exchange()
