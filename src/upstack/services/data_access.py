"""Data Access domain: which files of a batch a tenant may see, their parts on disk, row errors, previews.

Only files of batches in ``success`` are visible: a processing, failed or aborted batch (and an export
batch whose job has not finished) lists no files, and its file ids answer 404. Part names are served
only when the lake lists them under that file id, so a client-supplied name can never reach another path.

Row errors are exposed the way AEP does it, as files: ``GET /batches/{id}/failed`` lists
``row_errors/part-NNNNN.json`` (JSON lines, at most `ERROR_PART_ROWS` failed rows each, in input file
and row order) and ``?path=`` downloads one. ``/meta`` lists the same parts plus
``row_errors_sample.json`` (a JSON array of the first `SAMPLE_ROWS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from upstack.lake import Lake, PublishedFile
from upstack.lake.parquet import read_preview
from upstack.services.errors import NotFound
from upstack.storage import catalog_repo as repo
from upstack.storage.models import Batch, DatasetFile, FailedRow
from upstack.tenant import Tenant

ERROR_PART_ROWS = 10_000
SAMPLE_ROWS = 100
PREVIEW_ROWS = 100
SAMPLE_NAME = "row_errors_sample.json"
_PART = re.compile(r"row_errors/part-(\d{5})\.json")


def get_batch(s: Session, t: Tenant, batch_id: str) -> Batch:
    b = repo.get_batch(s, t, batch_id)
    if b is None:
        raise NotFound("Batch not found.")
    return b


# ---- dataset files ---------------------------------------------------------------------------------

def batch_files(s: Session, t: Tenant, batch_id: str) -> list[DatasetFile]:
    b = get_batch(s, t, batch_id)
    if b.status != "success":
        return []
    return list(repo.files_of_batch(s, t, b.id))


def get_file(s: Session, t: Tenant, file_id: str) -> DatasetFile:
    f = repo.get_file(s, t, file_id)
    b = repo.get_batch(s, t, f.batch_id) if f is not None else None
    if f is None or b is None or b.status != "success":
        raise NotFound("DataSetFile not found.")
    return f


def file_parts(s: Session, t: Tenant, lake: Lake, file_id: str) -> tuple[DatasetFile, list[PublishedFile]]:
    f = get_file(s, t, file_id)
    parts = [p for p in lake.published_files(t.org, t.sandbox, f.dataset_id, f.batch_id) if p.file_id == f.id]
    return f, parts


def file_part(s: Session, t: Tenant, lake: Lake, file_id: str, name: str) -> Path:
    """The on-disk path of one part, by a name the lake lists for this file id; 404 otherwise."""
    f, parts = file_parts(s, t, lake, file_id)
    if name in {p.name for p in parts}:
        path = lake.published_file(t.org, t.sandbox, f.dataset_id, f.batch_id, f.id, name)
        if path is not None:
            return path
    raise NotFound(f"File '{name[:200]}' not found in dataSetFile {f.id}.")


# ---- row errors ------------------------------------------------------------------------------------

def _row_error(r: FailedRow) -> dict[str, Any]:
    return {"file": r.file, "row": r.row, "code": r.code, "message": r.message, "record": r.record}


def _jsonl(rows: list[FailedRow]) -> bytes:
    return b"".join(orjson.dumps(_row_error(r)) + b"\n" for r in rows)


@dataclass(frozen=True)
class MetaFile:
    name: str
    content: bytes


def error_part_names(s: Session, batch_id: str) -> list[str]:
    total = repo.count_failed_rows(s, batch_id)
    return [f"row_errors/part-{k:05d}.json" for k in range(-(-total // ERROR_PART_ROWS))]


def error_part(s: Session, batch_id: str, name: str) -> MetaFile | None:
    match = _PART.fullmatch(name)
    if match is None:
        return None
    rows = list(repo.failed_rows(s, batch_id, int(match.group(1)) * ERROR_PART_ROWS, ERROR_PART_ROWS))
    return MetaFile(name, _jsonl(rows)) if rows else None


def failed_files(s: Session, t: Tenant, batch_id: str, start: int, limit: int) -> tuple[list[MetaFile], int]:
    """One page of the batch's row error files (with their bytes, so lengths are exact) and how many exist."""
    b = get_batch(s, t, batch_id)
    names = error_part_names(s, b.id)
    page = [error_part(s, b.id, n) for n in names[start:start + limit]]
    return [p for p in page if p is not None], len(names)


def failed_file(s: Session, t: Tenant, batch_id: str, name: str) -> MetaFile:
    b = get_batch(s, t, batch_id)
    part = error_part(s, b.id, name)
    if part is None:
        raise NotFound(f"File '{name[:200]}' not found among the failed rows of batch {b.id}.")
    return part


def _sample(s: Session, batch_id: str) -> MetaFile | None:
    rows = list(repo.failed_rows(s, batch_id, 0, SAMPLE_ROWS))
    if not rows:
        return None
    return MetaFile(SAMPLE_NAME, orjson.dumps([_row_error(r) for r in rows]))


def meta_files(s: Session, t: Tenant, batch_id: str, start: int, limit: int) -> tuple[list[MetaFile], int]:
    b = get_batch(s, t, batch_id)
    sample = _sample(s, b.id)
    names = ([SAMPLE_NAME] if sample else []) + error_part_names(s, b.id)
    page = [sample if n == SAMPLE_NAME else error_part(s, b.id, n) for n in names[start:start + limit]]
    return [p for p in page if p is not None], len(names)


def meta_file(s: Session, t: Tenant, batch_id: str, name: str) -> MetaFile:
    b = get_batch(s, t, batch_id)
    found = _sample(s, b.id) if name == SAMPLE_NAME else error_part(s, b.id, name)
    if found is None:
        raise NotFound(f"File '{name[:200]}' not found in the meta files of batch {b.id}.")
    return found


# ---- preview ---------------------------------------------------------------------------------------

def dataset_preview(s: Session, t: Tenant, lake: Lake, dataset_id: str, limit: int = PREVIEW_ROWS) -> list[dict]:
    """The first `limit` rows of the dataset's successful batches, oldest batch first, as JSON-safe dicts."""
    ds = repo.get_dataset(s, t, dataset_id)
    if ds is None:
        raise NotFound("DataSet not found.")
    paths: list[Path] = []
    seen = 0
    by_batch: dict[str, list[PublishedFile]] = {}
    for f in repo.visible_files_of_dataset(s, t, ds.id):
        if seen >= limit:
            break
        if f.batch_id not in by_batch:
            by_batch[f.batch_id] = lake.published_files(t.org, t.sandbox, ds.id, f.batch_id)
        paths.extend(p.path for p in by_batch[f.batch_id] if p.file_id == f.id and p.name.endswith(".parquet"))
        seen += f.records
    return read_preview(paths, limit)
