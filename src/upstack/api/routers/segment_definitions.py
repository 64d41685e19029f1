"""Segment definition routes (/data/core/ups/segment/definitions): parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request

from upstack.api.bodies import request_body, typed_body
from upstack.api.deps import ReadSessionDep, RequestIdDep, SessionDep, TenantDep
from upstack.api.openapi import GATEWAY, answers, query
from upstack.api.paging import offset_link, offset_query
from upstack.api.responses import Json
from upstack.schemas.segment_definitions import (
    CreateSegmentDefinition,
    PatchSegmentDefinition,
    SegmentDefinition,
    SegmentDefinitionBulkGet,
    SegmentDefinitionBulkGetAnswer,
    SegmentDefinitionDeleted,
    SegmentDefinitionList,
)
from upstack.services import segment_definitions as sd

PATH = "/data/core/ups/segment/definitions"
router = APIRouter(prefix=PATH, tags=["segment definitions"])
CreateBody = typed_body(CreateSegmentDefinition)
PatchBody = typed_body(PatchSegmentDefinition)
BulkGetBody = typed_body(SegmentDefinitionBulkGet)
BODY = (400, 408, 413, 415)  # what a route reading a JSON body may answer
NOT_FOUND = {404: "No such segment definition in this sandbox."}
INVALID = {400: "Malformed or invalid definition: the message names the member, or where the PQL fails (line, "
                "column)."}
EXISTS = {422: "A definition of this name already exists in this sandbox: change it with PATCH."}
FILTERS = tuple(f"evaluationInfo.{mode}.enabled" for mode in sd.MODES)
LOCATION = {"X-Location": {"schema": {"type": "string"}, "description": "The definition's path."}}

LIST_QUERY = {"parameters": [
    query("limit", {"type": "integer", "default": 100}, "Definitions per page: clamped to 1..1000, never refused."),
    query("start", {"type": "integer", "minimum": 0, "default": 0}, "Definitions to skip (`link.next` carries it)."),
    query("page", {"type": "integer", "minimum": 0, "default": 0}, "0-based page of `limit` definitions, after "
          "`start`."),
    query("sort", {"type": "string", "default": "creationTime:desc"}, "`field:asc|desc`, several separated by "
          "commas; fields: " + ", ".join(sd.SORT_FIELDS) + "."),
    *(query(name, {"type": "boolean"}, f"Only the definitions whose `{name}` is this.") for name in FILTERS),
]}


def _location(definition: dict) -> dict[str, str]:
    return {"X-Location": f"{PATH}/{definition['id']}"}


@router.get("", response_model=None, openapi_extra=LIST_QUERY, responses=answers(
    400, *GATEWAY, ok={200: {"model": SegmentDefinitionList, "description": "One page of the sandbox's "
                                                                                 "definitions."}}))
@router.get("/", include_in_schema=False)
def list_definitions(request: Request, s: ReadSessionDep, t: TenantDep):
    q = request.query_params
    skip, limit = offset_query(q)
    segments, page, more = sd.list_page(s, t, filters={m: q.get(f"evaluationInfo.{m}.enabled") for m in sd.MODES},
                                        sort=q.get("sort"), skip=skip, limit=limit)
    link = offset_link(q, PATH, skip, limit, len(segments), more, keep=("sort", *FILTERS))
    return Json({"segments": segments, "page": page, "link": link})


@router.post("", response_model=None, openapi_extra=request_body(CreateSegmentDefinition), responses=answers(
    *BODY, 422, *GATEWAY, 507, said={**INVALID, **EXISTS},
    ok={200: {"model": SegmentDefinition, "description": "The definition, version 1.", "headers": LOCATION}}))
@router.post("/", include_in_schema=False)
def create_definition(body: CreateBody, s: SessionDep, t: TenantDep):
    view = sd.definition_view(sd.create_definition(s, t, body))
    return Json(view, headers=_location(view))


@router.post("/bulk-get", status_code=207, response_model=None, openapi_extra=request_body(SegmentDefinitionBulkGet),
             responses=answers(*BODY, 404, *GATEWAY, said={404: "None of the ids names a definition."}, ok={
                 207: {"model": SegmentDefinitionBulkGetAnswer, "description": "Each id with its definition or its "
                                                                               "404."}}))
def bulk_get(body: BulkGetBody, s: ReadSessionDep, t: TenantDep, request_id: RequestIdDep):
    return Json(sd.bulk_get(s, t, body, request_id), status_code=207)


@router.get("/{definition_id}", response_model=None, responses=answers(
    404, *GATEWAY, said=NOT_FOUND, ok={200: {"model": SegmentDefinition, "description": "The definition."}}))
def get_definition(definition_id: str, s: ReadSessionDep, t: TenantDep):
    return Json(sd.definition_view(sd.get_definition(s, t, definition_id)))


@router.patch("/{definition_id}", response_model=None, openapi_extra=request_body(PatchSegmentDefinition),
              responses=answers(*BODY, 404, 422, *GATEWAY, 507, said={**NOT_FOUND, **INVALID, **EXISTS}, ok={
                  200: {"model": SegmentDefinition, "description": "The definition, one version more when its "
                                                                   "expression changed.", "headers": LOCATION}}))
def patch_definition(definition_id: str, body: PatchBody, s: SessionDep, t: TenantDep):
    view = sd.definition_view(sd.patch_definition(s, t, definition_id, body))
    return Json(view, headers=_location(view))


@router.delete("/{definition_id}", response_model=None, responses=answers(
    404, *GATEWAY, 507, said=NOT_FOUND, ok={200: {"model": SegmentDefinitionDeleted, "description": "Deleted."}}))
def delete_definition(definition_id: str, s: SessionDep, t: TenantDep):
    return Json(sd.delete_definition(s, t, definition_id))
