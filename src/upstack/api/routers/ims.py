"""IMS token endpoint (POST /ims/token/v3): what real clients call before anything else."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from upstack.api.deps import read_body
from upstack.api.openapi import catalog_answers
from upstack.api.responses import Json
from upstack.schemas.admin import ImsToken, ImsTokenRequest
from upstack.schemas.errors import GatewayErrorBody
from upstack.services import ims

router = APIRouter(prefix="/ims", tags=["ims"])

# The body is read as a form whatever its Content-Type says (as IMS clients send it); the same fields may come as
# query parameters instead. Not required: a request naming its client in the query has no body.
FORM = {"requestBody": {"required": False, "description": "The fields may come as query parameters too (the form's win).",
                        "content": {"application/x-www-form-urlencoded": {
    "schema": ImsTokenRequest.model_json_schema()}}}}


@router.post("/token/v3", response_model=None, openapi_extra=FORM, responses=catalog_answers(
    400, 408, 413, 503, 507, said={
        400: "`invalid_request` (no client_id, a NUL, too long) or `unsupported_grant_type`.",
        413: "The body is larger than UPSTACK_MAX_BODY_BYTES."},
    ok={200: {"model": ImsToken, "description": "A token, valid `expires_in` seconds."},
        401: {"model": GatewayErrorBody, "description": "Strict mode: an unknown client or a wrong secret "
                                                         "(`error_code: invalid_client`)."}}))
@router.post("/token/v2", include_in_schema=False)
async def token(request: Request):
    raw = (await read_body(request)).decode("utf-8", "replace")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    form.update({k: v for k, v in request.query_params.items() if k not in form})
    ctx = request.app.state.ctx
    return Json(await run_in_threadpool(ims.issue_token, ctx.db, ctx.settings, form))
