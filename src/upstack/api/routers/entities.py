"""Profile Access routes (/data/core/ups/access/entities): plan in a short transaction, merge outside it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.deps import ContextDep, JsonBody, TenantDep
from upstack.api.responses import Json
from upstack.services import entities, profile_deletions

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


@router.delete("")
@router.delete("/", include_in_schema=False)
def delete_entity(request: Request, ctx: ContextDep, t: TenantDep):
    """Deletes the profile of an identity (CONTRACT §9): planned and checked like a lookup, then recorded; the
    data lake keeps the records."""
    with ctx.db.session() as s:
        lookup = entities.plan_delete(s, ctx.lake, t, request.query_params)
    entities.check_deletable(lookup)
    ns, ident = lookup.identity
    with ctx.db.session() as s:
        profile_deletions.record(s, t, ns, ident)
    return Response(status_code=202)
