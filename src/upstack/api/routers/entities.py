"""Profile Access routes (/data/core/ups/access/entities): plan in a short transaction, merge outside it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from upstack.api.deps import ContextDep, JsonBody, TenantDep
from upstack.api.responses import Json
from upstack.services import entities

router = APIRouter(prefix=entities.PATH, tags=["entities"])


@router.get("")
@router.get("/", include_in_schema=False)
def get_entities(request: Request, ctx: ContextDep, t: TenantDep):
    with ctx.db.session() as s:
        lookup = entities.plan(s, ctx.lake, t, request.query_params)
    return Json(entities.events(lookup) if lookup.events else entities.profile(lookup))


@router.post("")
@router.post("/", include_in_schema=False)
def post_entities(body: JsonBody, ctx: ContextDep, t: TenantDep):
    with ctx.db.session() as s:
        lookups = entities.plan_many(s, ctx.lake, t, body)
    return Json(entities.profiles(lookups))
