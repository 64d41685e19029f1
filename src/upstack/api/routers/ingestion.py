"""Batch Ingestion routes (/data/foundation/import): parse, call the service, shape the answer.

Uploads stream: the request body goes chunk by chunk from the event loop to the lake writer running in a
worker thread, so a large file never sits in memory, and the lake's byte limit (and the gateway's) stop
it as soon as it is too large.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect

from upstack.api.bodies import request_body, typed_body
from upstack.api.deps import ContextDep, LakeDep, SessionDep, SettingsDep, TenantDep
from upstack.api.gateway import BodyTooLarge
from upstack.api.openapi import GATEWAY, catalog_answers, head_answers, query
from upstack.api.paging import int_param
from upstack.api.responses import Json
from upstack.api.views import batch_view
from upstack.lake import UploadedFile
from upstack.schemas.ingestion import (
    ACTIONS,
    FILE_ACTIONS,
    CreateImportBatch,
    ImportBatch,
    ImportFile,
    ImportPreview,
)
from upstack.services import ingestion
from upstack.services.errors import Invalid, RequestTimeout, UnsupportedMediaType


class _AnyPath(Convertor):
    """Like `path`, but also matching control characters (newlines included), so that such a name reaches
    the path check and is refused as 400 instead of falling through to "no route"."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())

imports = APIRouter(prefix="/data/foundation/import", tags=["batch ingestion"])
CreateBody = typed_body(CreateImportBatch)

PREVIEW_ROWS = 10
FILE_ROUTE = "/batches/{batch_id}/datasets/{dataset_id}/files/{file_path:anypath}"

# What /openapi.json says of the routes below (tests/test_openapi_shapes.py holds it to Adobe's spec). The upload
# routes read their body themselves, chunk by chunk (`_store`): it is declared, never read into a model.
NOT_FOUND = {404: "No such batch (or dataset of the batch) in this sandbox."}
UPLOADED = {"requestBody": {"required": True, "description": "The file's bytes, streamed (no form encoding).",
                            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
OCTET_ONLY = {415: "The Content-Type is not application/octet-stream.",
              413: "The file is larger than UPSTACK_MAX_UPLOAD_BYTES."}
FILE_ANSWER = {200: {"model": ImportFile, "description": "The file as received so far."}}
BATCH_ACTION = {"parameters": [query(
    "action", {"type": "string", "enum": list(ACTIONS)}, "COMPLETE ingests the uploads (the batch goes "
    "`processing`); ABORT and FAIL end a loading batch and drop its uploads; REVERT deletes a finished batch, its "
    "files and its records. Case-insensitive; the last one given counts.", required=True)]}
FILE_ACTION = {"parameters": [query(
    "action", {"type": "string", "enum": list(FILE_ACTIONS)}, "INITIALIZE starts (or restarts) a large file, "
    "which PATCH then fills part by part; COMPLETE ends it. Case-insensitive.", required=True)]}
PART = {"parameters": [{
    "name": "Content-Range", "in": "header", "required": True,
    "schema": {"type": "string", "pattern": "^\\s*bytes\\s+\\d+-\\d+/(\\d+|\\*)\\s*$"},
    "description": "`bytes <first>-<last>/<total or *>`: where the part goes. A part starts at or before the "
                   "bytes received so far (HEAD says how many); the body is exactly its length."}], **UPLOADED}
PREVIEW_QUERY = {"parameters": [
    query("format", {"type": "string", "enum": ["json", "parquet"]},
          "Read the uploads as this format (case-insensitive); the batch's own by default."),
    query("isMultiLineJson", {"type": "boolean"}, "json: the files are JSON arrays; the batch's own by default."),
    query("nrow", {"type": "integer", "minimum": 0, "maximum": 100, "default": 0},
          f"Records to show; 0 means {PREVIEW_ROWS}."),
]}


@imports.post("/batches", status_code=201, response_model=None, openapi_extra=request_body(CreateImportBatch),
              responses=catalog_answers(400, 404, 408, 413, 415, *GATEWAY, 507, said={
                  404: "No such dataset in this sandbox."}, ok={201: {
                      "model": ImportBatch, "description": "The batch, `loading`: upload its files, then COMPLETE it.",
                      "headers": {"x-upstack-warning": {
                          "schema": {"type": "string"},
                          "description": "`ignored member(s): ...`: members of the body the server ignored."}}}}))
@imports.post("/batches/", status_code=201, include_in_schema=False)
def create_batch(body: CreateBody, s: SessionDep, t: TenantDep):
    b = ingestion.create_batch(s, t, body)
    return Json(batch_view(b), status_code=201)


@imports.post("/batches/{batch_id}", response_model=None, openapi_extra=BATCH_ACTION, responses=catalog_answers(
    400, 404, *GATEWAY, 507, said=NOT_FOUND, ok={200: {"model": ImportBatch, "description": (
        "The batch as it is now; after REVERT, as it was, with status `deleted`.")}}))
def batch_action(batch_id: str, request: Request, s: SessionDep, t: TenantDep, lake: LakeDep, settings: SettingsDep):
    actions = request.query_params.getlist("action")
    b = ingestion.act(s, t, lake, settings, batch_id, actions[-1] if actions else None)
    return Json(batch_view(b))


@imports.get("/batches/{batch_id}/datasets/{dataset_id}/preview", response_model=None, openapi_extra=PREVIEW_QUERY,
             responses=catalog_answers(400, 404, *GATEWAY, said=NOT_FOUND, ok={200: {
                 "model": ImportPreview, "description": "The first records of the files uploaded so far."}}))
def upload_preview(batch_id: str, dataset_id: str, request: Request, s: SessionDep, t: TenantDep, lake: LakeDep,
                   settings: SettingsDep):
    params = request.query_params
    multiline = params.get("isMultiLineJson")
    if multiline is not None and multiline.lower() not in ("true", "false"):
        raise Invalid("'isMultiLineJson' must be true or false.")
    nrow = int_param(params, "nrow", 0, lo=0, hi=100) or PREVIEW_ROWS
    return Json(ingestion.upload_preview(s, t, lake, settings, batch_id, dataset_id, params.get("format"),
                                         None if multiline is None else multiline.lower() == "true", nrow))


@imports.put(FILE_ROUTE, response_model=None, response_class=Response, openapi_extra=UPLOADED,
             responses=catalog_answers(400, 404, 408, 413, 415, *GATEWAY, 507, said=NOT_FOUND | OCTET_ONLY, ok={
                 200: {"description": "Stored: the file is part of the batch (a second PUT replaces it)."}}))
async def upload_file(batch_id: str, dataset_id: str, file_path: str, request: Request, ctx: ContextDep,
                      t: TenantDep):
    _require_octet_stream(request)
    b, rel = await _checked(ctx, t, batch_id, dataset_id, file_path)
    await _store(ctx, t, b, request, lambda: ingestion.begin_upload(ctx.lake, b, rel, ctx.settings.max_upload_bytes))
    return Response(status_code=200)


@imports.patch(FILE_ROUTE, response_model=None, openapi_extra=PART, responses=catalog_answers(
    400, 404, 408, 413, 415, *GATEWAY, 507, said=NOT_FOUND | OCTET_ONLY, ok=FILE_ANSWER))
async def upload_part(batch_id: str, dataset_id: str, file_path: str, request: Request, ctx: ContextDep,
                      t: TenantDep):
    """One part of a large file, placed by its Content-Range (after POST ?action=INITIALIZE)."""
    _require_octet_stream(request)
    b, rel = await _checked(ctx, t, batch_id, dataset_id, file_path)
    content_range = request.headers.get("content-range")
    stored = await _store(ctx, t, b, request, lambda: ingestion.begin_part(
        ctx.lake, b, rel, content_range, ctx.settings.max_upload_bytes))
    return Json({"name": rel, "sizeInBytes": stored.size})


@imports.post(FILE_ROUTE, response_model=None, openapi_extra=FILE_ACTION, responses=catalog_answers(
    400, 404, *GATEWAY, 507, said=NOT_FOUND, ok=FILE_ANSWER))
async def large_file_action(batch_id: str, dataset_id: str, file_path: str, request: Request, ctx: ContextDep,
                            t: TenantDep):
    """Large file uploads: ?action=INITIALIZE starts (or restarts) a file, ?action=COMPLETE ends it."""
    b, rel = await _checked(ctx, t, batch_id, dataset_id, file_path)
    action = (request.query_params.get("action") or "").upper()
    if action == "INITIALIZE":
        size = (await _store(ctx, t, b, request, lambda: ingestion.begin_upload(
            ctx.lake, b, rel, ctx.settings.max_upload_bytes), read_body=False)).size
    elif action == "COMPLETE":
        size = ingestion.complete_large_file(ctx.lake, b, rel)
    else:
        raise Invalid(f"Unknown file action '{request.query_params.get('action') or ''}': use INITIALIZE or COMPLETE.")
    return Json({"name": rel, "sizeInBytes": size})


@imports.head(FILE_ROUTE, response_class=Response, responses=head_answers(400, 404, *GATEWAY, said={
    404: "No such batch in this sandbox, or nothing of this file received yet."}, ok={
        200: {"description": "What the server holds of the file so far, no body.", "headers": {
            "Content-Length": {"schema": {"type": "integer"}, "description": "Bytes received so far."},
            "Range": {"schema": {"type": "string"}, "description": "`bytes=0-<last>`: the bytes received (absent "
                      "while none are)."}}}}))
def upload_status(batch_id: str, dataset_id: str, file_path: str, s: SessionDep, t: TenantDep, lake: LakeDep):
    rel = ingestion.upload_path(file_path)
    b = ingestion.get_batch(s, t, batch_id)
    size = ingestion.uploaded_size(lake, b, dataset_id, rel)
    if size is None:
        return Response(status_code=404)
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    if size:
        headers["Range"] = f"bytes=0-{size - 1}"  # what a large file upload has received so far
    return Response(status_code=200, headers=headers)


def _require_octet_stream(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/octet-stream":
        raise UnsupportedMediaType(f"Content-Type must be application/octet-stream for file uploads, got "
                                   f"'{ctype or 'none'}'.")


async def _checked(ctx, t, batch_id: str, dataset_id: str, file_path: str):
    def check():
        # Its own short transaction: the upload may stream for minutes and must not hold one open.
        with ctx.db.session() as s:
            return ingestion.check_upload(s, t, batch_id, dataset_id, file_path)

    return await run_in_threadpool(check)


# The body is read on the event loop and written in pieces of about this size, each a short hop to a worker
# thread: a slow client holds no thread (40 of them serve every synchronous route), only a coroutine.
_WRITE_BYTES = 1 << 20


async def _store(ctx, t, b, request: Request, begin: Callable[[], ingestion.Upload], *,
                 read_body: bool = True) -> UploadedFile:
    """Receive an upload into a locked temp file, then accept it into its batch in a short transaction of
    its own. Whatever fails, nothing half-written stays and the client gets an answer."""
    upload = await anyio.to_thread.run_sync(begin)
    body = _Body(request, ctx.settings.request_idle_timeout_seconds)
    try:
        if read_body:
            pending: list[bytes] = []
            size = 0
            async for chunk in body.chunks():
                pending.append(chunk)
                size += len(chunk)
                if size >= _WRITE_BYTES:
                    await anyio.to_thread.run_sync(upload.write, b"".join(pending))
                    pending, size = [], 0
            if pending:
                await anyio.to_thread.run_sync(upload.write, b"".join(pending))

        def finish_and_accept() -> UploadedFile:
            upload.finish()
            with ctx.db.session() as s:
                return ingestion.accept_upload(s, t, b.id, upload.pending)

        return await run_in_threadpool(finish_and_accept)
    except BaseException as exc:
        await anyio.to_thread.run_sync(upload.discard)
        if isinstance(exc, Exception) and not isinstance(exc, BodyTooLarge | RequestTimeout | ClientDisconnect):
            # The client may still be sending: read the rest so it sees our answer, not a reset connection.
            await body.drain()
        raise


class _Body:
    """The request body, chunk by chunk, each one awaited at most `idle_s` seconds (a stalled client gets a
    408 instead of holding the request open forever); and a drain for when we stop reading early."""

    def __init__(self, request: Request, idle_s: float):
        self.request = request
        self.idle_s = idle_s
        self.finished = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.finished:
            chunk = await self._next()
            if chunk:
                yield chunk

    async def _next(self) -> bytes:
        try:
            with anyio.fail_after(self.idle_s):
                message = await self.request.receive()
        except TimeoutError:
            raise RequestTimeout(f"No part of the request body arrived for {self.idle_s:g} s.") from None
        if message["type"] == "http.disconnect":
            self.finished = True
            raise ClientDisconnect()
        if not message.get("more_body", False):
            self.finished = True
        return message.get("body", b"")

    async def drain(self) -> None:
        try:
            while not self.finished:
                await self._next()
        except (RequestTimeout, ClientDisconnect, BodyTooLarge):
            pass


# The app mounts one `router` per module (Catalog's batch writes are in routers/catalog.py).
router = APIRouter()
router.include_router(imports)
