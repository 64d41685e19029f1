"""Merge policy routes (/data/core/ups/config/mergePolicies): parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.bodies import request_body, typed_body
from upstack.api.deps import RequestIdDep, SessionDep, TenantDep
from upstack.api.openapi import GATEWAY, answers, query
from upstack.api.paging import children_page
from upstack.api.responses import Json
from upstack.schemas.merge_policies import (
    MergePolicy,
    MergePolicyBulkGet,
    MergePolicyBulkGetAnswer,
    MergePolicyList,
    MergePolicyPatch,
    MergePolicyRequest,
)
from upstack.services import merge_policies as mp

PATH = "/data/core/ups/config/mergePolicies"
router = APIRouter(prefix=PATH, tags=["merge policies"])
PolicyBody = typed_body(MergePolicyRequest)
PatchBody = typed_body(MergePolicyPatch)
BulkGetBody = typed_body(MergePolicyBulkGet)
BODY = (400, 408, 413, 415)  # what a route reading a JSON body may answer
NOT_FOUND = {404: "No such merge policy in this sandbox."}
# Every operation may seed the sandbox's default policy on its first request (a write): each declares 507.

# The list's query (the route reads request.query_params): declared here.
LIST_QUERY = {"parameters": [
    query("limit", {"type": "integer", "default": 20}, "Policies per page: clamped to 1..1000, never refused."),
    query("start", {"type": "integer", "minimum": 0, "default": 0}, "Policies to skip (`_page.next`)."),
    query("orderBy", {"type": "string"}, "One of " + ", ".join(mp.ORDER_FIELDS) + ", optionally prefixed by "
          "`-` (descending) or `+`; `orderby` is read too. Without it, oldest first."),
    query("orderby", {"type": "string"}, "The same as `orderBy`."),
    query("default", {"type": "boolean"}, "Only the default policies (`true`) or the others (`false`)."),
    query("schema.name", {"type": "string"}, "Only the policies of this XDM class (`_xdm.context.profile`)."),
]}


@router.get("", response_model=None, openapi_extra=LIST_QUERY, responses=answers(
    400, *GATEWAY, 507, ok={200: {"model": MergePolicyList, "description": "One page of the sandbox's policies."}}))
@router.get("/", include_in_schema=False)
def list_policies(request: Request, s: SessionDep, t: TenantDep):
    q = request.query_params
    rows = mp.query_policies(s, t, default=q.get("default"), schema_name=q.get("schema.name"),
                             order_by=q.get("orderBy") or q.get("orderby"))
    return Json(children_page(q, rows, PATH, keep=("default", "schema.name", "orderBy", "orderby")))


@router.post("", response_model=None, openapi_extra=request_body(MergePolicyRequest), responses=answers(
    *BODY, *GATEWAY, 507, ok={200: {"model": MergePolicy, "description": "The policy, version 1."}}))
@router.post("/", include_in_schema=False)
def create_policy(body: PolicyBody, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.create_policy(s, t, body)))


@router.post("/bulk-get", status_code=207, response_model=None, openapi_extra=request_body(MergePolicyBulkGet),
             responses=answers(*BODY, 404, *GATEWAY, 507, said={404: "None of the ids names a policy."}, ok={
                 207: {"model": MergePolicyBulkGetAnswer, "description": "Each id with its policy or its 404."}}))
def bulk_get(body: BulkGetBody, s: SessionDep, t: TenantDep, request_id: RequestIdDep):
    return Json(mp.bulk_get(s, t, body, request_id), status_code=207)


@router.get("/{policy_id}", response_model=None, responses=answers(
    404, *GATEWAY, 507, said=NOT_FOUND, ok={200: {"model": MergePolicy, "description": "The policy."}}))
def get_policy(policy_id: str, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.get_policy(s, t, policy_id)))


@router.put("/{policy_id}", response_model=None, openapi_extra=request_body(MergePolicyRequest), responses=answers(
    *BODY, 404, *GATEWAY, 507, said=NOT_FOUND, ok={200: {"model": MergePolicy, "description": "The policy, one "
                                                                                             "version more."}}))
def replace_policy(policy_id: str, body: PolicyBody, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.replace_policy(s, t, policy_id, body)))


@router.patch("/{policy_id}", response_model=None, openapi_extra=request_body(MergePolicyPatch), responses=answers(
    *BODY, 404, *GATEWAY, 507, said=NOT_FOUND, ok={200: {"model": MergePolicy, "description": "The policy, one "
                                                                                             "version more."}}))
def patch_policy(policy_id: str, body: PatchBody, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.patch_policy(s, t, policy_id, body)))


@router.delete("/{policy_id}", response_model=None, response_class=Response, responses=answers(
    400, 404, *GATEWAY, 507, said={**NOT_FOUND, 400: "The policy is active on edge: it cannot be deleted."},
    ok={200: {"description": "Deleted: an empty body."}}))
def delete_policy(policy_id: str, s: SessionDep, t: TenantDep):
    mp.delete_policy(s, t, policy_id)
    return Response(status_code=200)
