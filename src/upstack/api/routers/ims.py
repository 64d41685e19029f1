"""IMS token endpoint (POST /ims/token/v3): what real clients call before anything else."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from upstack.api.deps import read_body
from upstack.api.responses import Json
from upstack.services import ims

router = APIRouter(prefix="/ims", tags=["ims"])


@router.post("/token/v3")
@router.post("/token/v2", include_in_schema=False)
async def token(request: Request):
    raw = (await read_body(request)).decode("utf-8", "replace")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    form.update({k: v for k, v in request.query_params.items() if k not in form})
    ctx = request.app.state.ctx
    return Json(await run_in_threadpool(ims.issue_token, ctx.db, ctx.settings, form))
