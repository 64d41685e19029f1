"""Data Access routes (/data/foundation/export): parse, call the service, shape the answer.

Downloads stream from disk in chunks (never a whole file in memory) and honour one byte range
(`bytes=a-b`, `bytes=a-`, `bytes=-n`) from the `Range` header, or from a `range` query parameter as
the aepp client sends it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from starlette.responses import StreamingResponse

from upstack.api.deps import LakeDep, RequestIdDep, SessionDep, TenantDep
from upstack.api.errors import body_for
from upstack.api.openapi import GATEWAY, catalog_answers, head_answers, query
from upstack.api.paging import int_param
from upstack.api.responses import Json
from upstack.schemas.data_access import (
    DataAccessFailed,
    DataAccessFiles,
    DataAccessMeta,
    DataAccessParts,
    DataAccessPreview,
)
from upstack.services import data_access
from upstack.services.errors import Invalid

router = APIRouter(prefix="/data/foundation/export", tags=["data access"])

PREFIX = "/data/foundation/export"
MAX_LIMIT = 100
CHUNK = 1 << 20
OCTET = "application/octet-stream"
JSON_FILE = "application/json"


# What /openapi.json says of the routes below (tests/test_openapi_shapes.py holds it to Adobe's spec). Each route
# reads its query itself (`_paging`, `_path_param`, `_download`).
BINARY = {"schema": {"type": "string", "format": "binary"}}
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": MAX_LIMIT}, "Items per page.")
START = query("start", {"type": "integer", "minimum": 0, "default": 0}, "Items to skip.")
PAGED = {"parameters": [START, LIMIT]}


def _file_query(kind: str) -> dict:
    return {"parameters": [query("path", {"type": "string"}, f"The name of one {kind} (as listed): answers that file "
                                 "instead of the listing."), START, LIMIT]}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _paging(request: Request, names: list[str] | None = None) -> tuple[int, int]:
    """start/limit; where items have names, `start` may also be a name (aepp sends `start=<fileName>`): the page
    then begins after it."""
    limit = int_param(request.query_params, "limit", MAX_LIMIT, lo=1, hi=MAX_LIMIT)
    raw = request.query_params.get("start")
    if names is not None and raw and not raw.lstrip("-").isdigit():
        return sum(1 for n in names if n <= raw), limit
    return int_param(request.query_params, "start", 0, lo=0), limit


def _next_link(request: Request, path: str, start: int, limit: int, total: int) -> dict:
    if start + limit >= total:
        return {}
    return {"next": {"href": f"{_base(request)}{path}?{urlencode({'start': start + limit, 'limit': limit})}"}}


def _path_param(request: Request) -> str | None:
    values = request.query_params.getlist("path")
    return values[-1] if values else None


# ---- batches -------------------------------------------------------------------------------------------

@router.get("/batches/{batch_id}/files", response_model=None, openapi_extra=PAGED, responses=catalog_answers(
    400, 404, *GATEWAY, said={404: "No such batch in this sandbox."}, ok={200: {
        "model": DataAccessFiles, "description": "The batch's files; none until the batch is `success`."}}))
def list_batch_files(batch_id: str, request: Request, s: SessionDep, t: TenantDep):
    start, limit = _paging(request)
    files = data_access.batch_files(s, t, batch_id)
    base = _base(request)
    data = [{
        "dataSetFileId": f.id,
        "dataSetViewId": f.dataset_id,
        "version": "1.0.0",
        "created": str(f.created_ms),
        "updated": str(f.created_ms),
        "isValid": True,
        "records": str(f.records),
        "size": str(f.size_bytes),
        "_links": {"self": {"href": f"{base}/files/{quote(f.id, safe='')}"}},
    } for f in files[start:start + limit]]
    return Json({"data": data, "_page": {"limit": limit, "count": len(files)},
                 "_links": _next_link(request, f"/batches/{batch_id}/files", start, limit, len(files))})


def _meta_listing(request: Request, path: str, files, total: int, start: int, limit: int) -> dict:
    base = _base(request)
    data = [{"name": m.name, "length": str(len(m.content)),
             "_links": {"self": {"href": f"{base}{path}?{urlencode({'path': m.name})}"}}} for m in files]
    return {"data": data, "_page": {"limit": limit, "count": total},
            "_links": _next_link(request, path, start, limit, total)}


@router.get("/batches/{batch_id}/failed", response_model=None, openapi_extra=_file_query("row error part"),
            responses=catalog_answers(400, 404, *GATEWAY, said={404: "No such batch (or file of it) in this sandbox."},
                                      ok={200: {"model": DataAccessFailed, "description": (
                                          "The row error parts; with `path`, that part (JSON lines).")}}))
def batch_failed(batch_id: str, request: Request, s: SessionDep, t: TenantDep):
    name = _path_param(request)
    if name is not None:
        # application/json, as Adobe's spec documents for /failed and /meta (a row error part is JSON lines)
        return Response(data_access.failed_file(s, t, batch_id, name).content, media_type=JSON_FILE)
    start, limit = _paging(request)
    files, total = data_access.failed_files(s, t, batch_id, start, limit)
    return Json(_meta_listing(request, f"/batches/{batch_id}/failed", files, total, start, limit))


@router.get("/batches/{batch_id}/meta", response_model=None, openapi_extra=_file_query("meta file"),
            responses=catalog_answers(400, 404, *GATEWAY, said={404: "No such batch (or file of it) in this sandbox."},
                                      ok={200: {"model": DataAccessMeta, "description": (
                                          "The meta files; with `path`, that file.")}}))
def batch_meta(batch_id: str, request: Request, s: SessionDep, t: TenantDep):
    name = _path_param(request)
    if name is not None:
        return Response(data_access.meta_file(s, t, batch_id, name).content, media_type=JSON_FILE)
    start, limit = _paging(request)
    files, total = data_access.meta_files(s, t, batch_id, start, limit)
    return Json(_meta_listing(request, f"/batches/{batch_id}/meta", files, total, start, limit))


# ---- files ---------------------------------------------------------------------------------------------

FILE_QUERY = {"parameters": [
    query("path", {"type": "string"}, "The name of one part (as listed): downloads it instead of the listing."),
    query("start", {"type": "string"}, "Parts to skip, or a part's name: the page begins after it."), LIMIT,
    {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "With `path`: one byte range, `bytes=<first>-<last>`, `bytes=<first>-` or `bytes=-<n>`. "
                    "Malformed or multi-range values are ignored (the whole file)."},
    query("range", {"type": "string"}, "With `path`: the byte range as the `Range` header says it, for clients "
          "that cannot send the header; the header wins."),
]}
RANGE_HEADERS = {"Accept-Ranges": {"schema": {"type": "string"}, "description": "`bytes`."},
                 "Content-Length": {"schema": {"type": "integer"}, "description": "Bytes in this answer."},
                 "Content-Disposition": {"schema": {"type": "string"}, "description": "`attachment`, the part's name."}}


@router.get("/files/{file_id}", response_model=None, openapi_extra=FILE_QUERY, responses=catalog_answers(
    400, 404, 416, *GATEWAY, said={404: "No such dataSetFile (of a successful batch) or part in this sandbox.",
                                   416: "The range starts past the end of the part (`Content-Range: bytes */<size>`)."},
    ok={200: {"model": DataAccessParts, "content": {OCTET: BINARY}, "headers": RANGE_HEADERS, "description": (
        "Without `path`, the dataSetFile's parts (JSON); with `path`, that part's bytes (Parquet), streamed.")},
        206: {"content": {OCTET: BINARY}, "headers": {**RANGE_HEADERS, "Content-Range": {
            "schema": {"type": "string"}, "description": "`bytes <first>-<last>/<size>`."}},
              "description": "With `path` and a range: those bytes of the part."}}))
def get_file(file_id: str, request: Request, s: SessionDep, t: TenantDep, lake: LakeDep, rid: RequestIdDep):
    name = _path_param(request)
    if name is not None:
        path = data_access.file_part(s, t, lake, file_id, name)
        return _download(request, path, rid)
    f, parts = data_access.file_parts(s, t, lake, file_id)
    start, limit = _paging(request, names=[p.name for p in parts])
    href = f"{_base(request)}/files/{quote(f.id, safe='')}"
    data = [{"name": p.name, "length": str(p.size),
             "_links": {"self": {"href": f"{href}?{urlencode({'path': p.name})}"}}} for p in parts[start:start + limit]]
    return Json({"data": data, "_page": {"limit": limit, "count": len(parts)},
                 "_links": _next_link(request, f"/files/{f.id}", start, limit, len(parts))})


@router.head("/files/{file_id}", response_class=Response, openapi_extra={"parameters": [
    query("path", {"type": "string"}, "The name of one part (as listed).", required=True)]},
    responses=head_answers(400, 404, *GATEWAY, said={404: "No such dataSetFile or part in this sandbox."}, ok={
        200: {"description": "The part's size and type, no body.", "headers": {
            k: v for k, v in RANGE_HEADERS.items() if k != "Content-Disposition"}}}))
def head_file(file_id: str, request: Request, s: SessionDep, t: TenantDep, lake: LakeDep):
    name = _path_param(request)
    if name is None:
        raise Invalid("Query parameter 'path' is required: the name of one file of this dataSetFile.")
    size = data_access.file_part(s, t, lake, file_id, name).stat().st_size
    return Response(status_code=200, headers={"Content-Length": str(size), "Content-Type": OCTET,
                                              "Accept-Ranges": "bytes"})


# ---- preview -------------------------------------------------------------------------------------------

@router.get("/datasets/{dataset_id}/preview", response_model=None, responses=catalog_answers(
    404, *GATEWAY, said={404: "No such dataset in this sandbox."}, ok={200: {
        "model": DataAccessPreview, "description": f"Its first {data_access.PREVIEW_ROWS} records."}}))
def dataset_preview(dataset_id: str, s: SessionDep, t: TenantDep, lake: LakeDep):
    return Json({"data": data_access.dataset_preview(s, t, lake, dataset_id)})


# ---- byte ranges ---------------------------------------------------------------------------------------

_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")


class RangeNotSatisfiable(Exception):
    """Answered as 416 with `Content-Range: bytes */<size>` (so not through the renderer, which adds no headers)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a single-range `Range` header; None means the whole file.
    Malformed or multi-range headers are ignored, as RFC 9110 allows; a range past the end is 416."""
    if not header:
        return None
    match = _RANGE.fullmatch(header)
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"Range '{header}' selects no byte of a {size}-byte file.")
        return max(0, size - n), size - 1
    a = int(first)
    if last and int(last) < a:
        return None
    if a >= size:
        raise RangeNotSatisfiable(f"Range '{header}' starts past the end of a {size}-byte file.")
    return a, min(int(last), size - 1) if last else size - 1


def _download(request: Request, path: Path, request_id: str) -> Response:
    header = request.headers.get("range") or request.query_params.get("range")
    handle = path.open("rb")  # opened now: a republish swapping the directory cannot cut the stream short
    size = os.fstat(handle.fileno()).st_size
    try:
        selected = byte_range(header, size)
    except RangeNotSatisfiable as exc:
        handle.close()
        body = body_for(request.url.path, 416, "RangeNotSatisfiableError", str(exc), request_id)
        return Json(body, status_code=416, headers={"Content-Range": f"bytes */{size}"})
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f"attachment; filename=\"{path.name}\""}
    if selected is None:
        first, last, status = 0, size - 1, 200
    else:
        (first, last), status = selected, 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(_read(handle, first, last - first + 1), status_code=status, media_type=OCTET,
                             headers=headers)


def _read(handle, offset: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(offset)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()
