"""Profile Access routes (/data/core/ups/access/entities): plan in a short transaction, merge outside it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.bodies import request_body, typed_body, typed_query, unknown_field_paths
from upstack.api.deps import ContextDep, TenantDep
from upstack.api.openapi import GATEWAY, answers, query
from upstack.api.responses import Json
from upstack.schemas.entities import (
    EVENT,
    MAX_BATCH_IDENTITIES,
    MAX_EVENTS,
    PROFILE,
    EntitiesRequest,
    EntityDeleteQuery,
    EntityQuery,
    ProfileAnswer,
    ProfileEntityMap,
)
from upstack.services import entities, field_paths, profile_deletions

router = APIRouter(prefix=entities.PATH, tags=["entities"])
Query = typed_query(EntityQuery)
DeleteQuery = typed_query(EntityDeleteQuery)
Body = typed_body(EntitiesRequest)

NOT_FOUND = {404: "No profile for the identity (or identities) in this sandbox."}
TOO_LARGE = {422: "The identity graph is too large to merge (more than 50 identities)."}
_PROFILE_QUERY = [
    query("entityId", {"type": "string"}, "The identity's id (with `schema.name=" + PROFILE + "`)."),
    query("entityIdNS", {"type": "string"}, "The identity's namespace code, e.g. `Email` or `ECID`."),
    query("mergePolicyId", {"type": "string"}, "The merge policy; omitted: the sandbox's default."),
]
GET_QUERY = {"parameters": [
    query("schema.name", {"type": "string", "enum": [PROFILE, EVENT]},
          f"`{PROFILE}` for a profile, `{EVENT}` for its events (deprecated by Adobe, still served).",
          required=True),
    *_PROFILE_QUERY,
    query("relatedSchema.name", {"type": "string", "enum": [PROFILE]}, "Events: the profile's schema."),
    query("relatedEntityId", {"type": "string"}, "Events: the profile's identity id."),
    query("relatedEntityIdNS", {"type": "string"}, "Events: the profile's identity namespace."),
    query("fields", {"type": "string"}, "Comma-separated dot paths to keep, e.g. `person.name,workEmail`; "
          "paths no dataset of the sandbox has are named in `x-upstack-warning`."),
    query("startTime", {"type": "number"}, "Events: epoch ms, inclusive."),
    query("endTime", {"type": "number"}, "Events: epoch ms, exclusive."),
    query("limit", {"type": "number", "default": MAX_EVENTS}, f"Events per page, 1..{MAX_EVENTS}."),
    query("orderby", {"type": "string", "enum": ["timestamp", "+timestamp", "-timestamp"]},
          "Events: by timestamp, ascending (default) or descending."),
    query("start", {"type": "string"}, "Events: the event id the page starts at (from `_links.next`)."),
]}
DELETE_QUERY = {"parameters": [
    query("schema.name", {"type": "string", "enum": [PROFILE]}, "Only profiles are deleted.", required=True),
    *_PROFILE_QUERY,
]}


@router.get("", response_model=None, openapi_extra=GET_QUERY, responses=answers(
    400, 404, 422, *GATEWAY, said={**NOT_FOUND, **TOO_LARGE}, ok={200: {
        "model": ProfileAnswer, "description": "The profile as `{<profile id>: entity}`, or a page of its "
                                               "events (`schema.name=" + EVENT + "`)."}}))
@router.get("/", include_in_schema=False)
def get_entities(request: Request, q: Query, ctx: ContextDep, t: TenantDep):
    with ctx.db.session() as s:
        lookup = entities.plan(s, ctx.lake, t, q)
    unknown_field_paths(request, field_paths.unknown_in(lookup.inputs, lookup.fields,
                                                        "event" if lookup.events else "profile"))
    return Json(entities.events(lookup) if lookup.events else entities.profile(lookup))


@router.post("", response_model=None, openapi_extra=request_body(EntitiesRequest), responses=answers(
    400, 404, 408, 413, 415, *GATEWAY, said=NOT_FOUND, ok={200: {
        "model": ProfileEntityMap, "description": f"One entry per profile found (of up to "
                                                  f"{MAX_BATCH_IDENTITIES} identities)."}}))
@router.post("/", include_in_schema=False)
def post_entities(request: Request, body: Body, ctx: ContextDep, t: TenantDep):
    with ctx.db.session() as s:
        lookups = entities.plan_many(s, ctx.lake, t, body)
    unknown_field_paths(request, field_paths.unknown_in(lookups[0].inputs, body.fields, "profile"))
    return Json(entities.profiles(lookups))


@router.delete("", status_code=202, response_model=None, response_class=Response, openapi_extra=DELETE_QUERY,
               responses=answers(400, 404, *GATEWAY, 507, said=NOT_FOUND, ok={202: {
                   "description": "The profile is deleted (the data lake keeps its records): no body."}}))
@router.delete("/", include_in_schema=False)
def delete_entity(q: DeleteQuery, ctx: ContextDep, t: TenantDep):
    """Deletes the profile of an identity (CONTRACT §9): planned and checked like a lookup, then recorded; the
    data lake keeps the records."""
    with ctx.db.session() as s:
        lookup = entities.plan_delete(s, ctx.lake, t, q)
    entities.check_deletable(lookup)
    ns, ident = lookup.identity
    with ctx.db.session() as s:
        profile_deletions.record(s, t, ns, ident)
    return Response(status_code=202)

