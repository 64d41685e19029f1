"""Merge policy routes (/data/core/ups/config/mergePolicies): parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.deps import JsonBody, RequestIdDep, SessionDep, TenantDep
from upstack.api.paging import children_page
from upstack.api.responses import Json
from upstack.services import merge_policies as mp

PATH = "/data/core/ups/config/mergePolicies"
router = APIRouter(prefix=PATH, tags=["merge policies"])


@router.get("")
@router.get("/", include_in_schema=False)
def list_policies(request: Request, s: SessionDep, t: TenantDep):
    q = request.query_params
    rows = mp.query_policies(s, t, default=q.get("default"), schema_name=q.get("schema.name"),
                             order_by=q.get("orderBy") or q.get("orderby"))
    return Json(children_page(q, rows, PATH, keep=("default", "schema.name", "orderBy", "orderby")))


@router.post("")
@router.post("/", include_in_schema=False)
def create_policy(body: JsonBody, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.create_policy(s, t, body)))


@router.post("/bulk-get", status_code=207)
def bulk_get(body: JsonBody, s: SessionDep, t: TenantDep, request_id: RequestIdDep):
    return Json(mp.bulk_get(s, t, body, request_id), status_code=207)


@router.get("/{policy_id}")
def get_policy(policy_id: str, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.get_policy(s, t, policy_id)))


@router.put("/{policy_id}")
def replace_policy(policy_id: str, body: JsonBody, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.replace_policy(s, t, policy_id, body)))


@router.patch("/{policy_id}")
def patch_policy(policy_id: str, body: JsonBody, s: SessionDep, t: TenantDep):
    return Json(mp.policy_view(mp.patch_policy(s, t, policy_id, body)))


@router.delete("/{policy_id}")
def delete_policy(policy_id: str, s: SessionDep, t: TenantDep):
    mp.delete_policy(s, t, policy_id)
    return Response(status_code=200)
