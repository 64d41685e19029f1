"""Merge policies (CONTRACT §5): the seeded default, what a typed request (schemas/merge_policies.py) cannot
know (the datasets a precedence order names), the per-tenant rules, and every version kept."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy.orm import Session

from upstack.schemas.merge_policies import (
    PROFILE_SCHEMA,
    MergePolicyBulkGet,
    MergePolicyPatch,
    MergePolicyRequest,
    as_flag,
)
from upstack.services.errors import Invalid, NotFound
from upstack.services.tenancy import sandbox_view
from upstack.storage import catalog_repo
from upstack.storage import ups_repo as repo
from upstack.storage.models import MergePolicy
from upstack.tenant import Tenant

DEFAULT_ID = "timestampOrdered-none-mp"
DEFAULT_NAME = "Default Timebased"
MAX_POLICIES = 5


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---- views ---------------------------------------------------------------------------------------------

def policy_view(p: MergePolicy) -> dict[str, Any]:
    body = p.body
    return {
        "id": body["id"],
        "name": body["name"],
        "imsOrgId": p.org,
        "sandbox": sandbox_view(p.org, p.sandbox),
        "schema": body["schema"],
        "version": p.version,
        "identityGraph": body["identityGraph"],
        "attributeMerge": body["attributeMerge"],
        "isActiveOnEdge": p.is_active_on_edge,
        "default": p.is_default,
        "updateEpoch": p.update_epoch,
    }


# ---- seeding -------------------------------------------------------------------------------------------

def ensure_tenant(s: Session, t: Tenant, *, lock: bool = False) -> bool:
    """Seed `timestampOrdered-none-mp` the first time a tenant is seen; `lock` serialises policy changes. True
    when this call created the tenant."""
    now = _now_ms()
    created = repo.claim_tenant(s, t, now)
    if created:
        body = {"id": DEFAULT_ID, "name": DEFAULT_NAME, "schema": {"name": PROFILE_SCHEMA},
                "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"}}
        s.add(MergePolicy(id=DEFAULT_ID, org=t.org, sandbox=t.sandbox, version=1, body=body, is_default=True,
                          is_active_on_edge=False, deleted=False, created_ms=now, update_epoch=now // 1000))
        repo.add_version(s, t, DEFAULT_ID, 1, body)
        s.flush()
    if lock:
        repo.lock_tenant(s, t)
    return created


# ---- the request (validated by its model, schemas/merge_policies.py) -------------------------------------

def _check_order(s: Session, t: Tenant, order: list[str]) -> list[str]:
    """dataSetPrecedence `order` (distinct non-empty ids, the model says): this tenant's (non-export) datasets.
    Unknown ids are refused rather than silently merged as nothing."""
    for ds_id in order:
        ds = catalog_repo.get_dataset(s, t, ds_id)
        if ds is None:
            raise Invalid(f"'attributeMerge.order' names dataset '{ds_id}', which does not exist in this sandbox.")
        if ds.kind == "export":
            raise Invalid(f"'attributeMerge.order' names dataset '{ds_id}', an export target; only profile "
                          "datasets can take precedence.")
    return order


def _stored_body(body: MergePolicyRequest, name: str | None) -> dict[str, Any]:
    """What a version keeps of a checked request: the known members only, `order` with dataSetPrecedence."""
    merge = body.attributeMerge
    return {"name": name, "schema": {"name": PROFILE_SCHEMA}, "identityGraph": {"type": body.identityGraph.type},
            "attributeMerge": ({"type": merge.type, "order": list(merge.order or ())}
                               if merge.type == "dataSetPrecedence" else {"type": merge.type})}


def _parse_full(s: Session, t: Tenant, body: MergePolicyRequest, *,
                current: MergePolicy | None) -> tuple[dict, bool, bool]:
    """A POST or PUT body -> (stored body without id, default, isActiveOnEdge). Absent flags and name keep
    their current values on PUT (a client that GETs, edits and PUTs may drop them)."""
    sent = body.model_fields_set
    if body.attributeMerge.type == "dataSetPrecedence":
        _check_order(s, t, body.attributeMerge.order or [])
    name = body.name if "name" in sent else (current.body["name"] if current else None)
    default = body.default if "default" in sent else (current.is_default if current else False)
    edge = body.isActiveOnEdge if "isActiveOnEdge" in sent else (current.is_active_on_edge if current else False)
    return _stored_body(body, name), default, edge


# ---- rules shared by create and update -----------------------------------------------------------------

def _apply_flags(s: Session, t: Tenant, p: MergePolicy, default: bool, edge: bool, epoch: int) -> None:
    if edge and not p.is_active_on_edge:
        other = repo.edge_policy(s, t)
        if other is not None and other.id != p.id:
            raise Invalid(f"Merge policy '{other.body['id']}' is already active on edge; a sandbox can have only "
                          "one. Set isActiveOnEdge to false on it first.")
    if default:
        repo.clear_default(s, t, p.body["schema"]["name"], p.id, epoch)
    p.is_default = default
    p.is_active_on_edge = edge


def _record_change(s: Session, p: MergePolicy, body: dict, epoch: int) -> None:
    p.version += 1
    p.body = body
    p.update_epoch = epoch
    repo.add_version(s, Tenant(p.org, p.sandbox), p.id, p.version, body)


# ---- operations ----------------------------------------------------------------------------------------

def get_policy(s: Session, t: Tenant, policy_id: str) -> MergePolicy:
    ensure_tenant(s, t)
    p = repo.get_policy(s, t, policy_id)
    if p is None:
        raise NotFound(f"Merge policy '{policy_id}' not found.")
    return p


def list_policies(s: Session, t: Tenant) -> list[MergePolicy]:
    ensure_tenant(s, t)
    return list(repo.list_policies(s, t))


def create_policy(s: Session, t: Tenant, body: MergePolicyRequest) -> MergePolicy:
    ensure_tenant(s, t, lock=True)
    parsed, default, edge = _parse_full(s, t, body, current=None)
    if repo.count_policies(s, t) >= MAX_POLICIES:
        raise Invalid(f"A sandbox can have at most {MAX_POLICIES} merge policies; delete one first.")
    public_id = str(uuid.uuid4())
    now = _now_ms()
    stored = dict(parsed, id=public_id, name=parsed["name"] or public_id)
    p = MergePolicy(id=public_id, org=t.org, sandbox=t.sandbox, version=1, body=stored, is_default=False,
                    is_active_on_edge=False, deleted=False, created_ms=now, update_epoch=now // 1000)
    s.add(p)
    s.flush()
    _apply_flags(s, t, p, default, edge, now // 1000)
    repo.add_version(s, t, p.id, 1, stored)
    s.flush()
    return p


def replace_policy(s: Session, t: Tenant, policy_id: str, body: MergePolicyRequest) -> MergePolicy:
    ensure_tenant(s, t, lock=True)
    p = get_policy(s, t, policy_id)
    parsed, default, edge = _parse_full(s, t, body, current=p)
    epoch = int(time.time())
    _apply_flags(s, t, p, default, edge, epoch)
    _record_change(s, p, dict(parsed, id=p.body["id"]), epoch)
    s.flush()
    return p


def patch_policy(s: Session, t: Tenant, policy_id: str, ops: MergePolicyPatch) -> MergePolicy:
    """JSON-patch-like ops ({op, path, value}, one or an array) on the paths AEP lets a client change, in order;
    after each the patched policy is checked whole, as a PUT of it would be (a value's mistake is named with
    its member's path, the first one first)."""
    ensure_tenant(s, t, lock=True)
    p = get_policy(s, t, policy_id)
    doc: dict[str, Any] = {"name": p.body["name"], "schema": p.body["schema"],
                           "identityGraph": p.body["identityGraph"], "attributeMerge": p.body["attributeMerge"],
                           "default": p.is_default, "isActiveOnEdge": p.is_active_on_edge}
    for op in ops.root:  # at least one: the model says so
        path, value = op.target, op.value
        if path == "/identityGraph.type":
            doc["identityGraph"] = {"type": value}
        elif path == "/attributeMerge.type":
            if value == "dataSetPrecedence" and doc["attributeMerge"]["type"] != value:
                raise Invalid("Switching to dataSetPrecedence needs an 'attributeMerge.order'; use PUT with the "
                              "whole attributeMerge object.")
            if value != "dataSetPrecedence":
                doc["attributeMerge"] = {"type": value}
        else:
            doc[path[1:]] = value
        checked = MergePolicyRequest.model_validate(doc)
    epoch = int(time.time())
    _apply_flags(s, t, p, checked.default, checked.isActiveOnEdge, epoch)
    _record_change(s, p, dict(_stored_body(checked, checked.name), id=p.body["id"]), epoch)
    s.flush()
    return p


def delete_policy(s: Session, t: Tenant, policy_id: str) -> None:
    """Soft delete: the row and its versions stay so export jobs already naming it can still run."""
    ensure_tenant(s, t, lock=True)
    p = get_policy(s, t, policy_id)
    if p.is_active_on_edge:
        raise Invalid(f"Merge policy '{policy_id}' is active on edge and cannot be deleted; set isActiveOnEdge "
                      "to false first.")
    p.deleted = True
    p.is_default = False
    p.update_epoch = int(time.time())
    s.flush()


def bulk_get(s: Session, t: Tenant, body: MergePolicyBulkGet, request_id: str) -> dict[str, Any]:
    """{"results": {id: policy | per-id error}} (AEP bulk-get shape); NotFound when none exists."""
    wanted = [item.id for item in body.ids]
    ensure_tenant(s, t)
    results: dict[str, Any] = {}
    found = 0
    for pid in wanted:
        p = repo.get_policy(s, t, pid)
        if p is None:
            results[pid] = {"requestId": request_id, "errors": {"404": [
                {"code": "UPAPI-113430-404", "message": f"Merge policy '{pid}' not found."}]}}
        else:
            results[pid] = policy_view(p)
            found += 1
    if not found:
        raise NotFound(f"The merge policies {','.join(wanted)} are not found.")
    return {"results": results}


# ---- what export jobs and lookups use ------------------------------------------------------------------

def resolve(s: Session, t: Tenant, policy_id: str | None, version: int | None) -> tuple[str, int, dict]:
    """(public id, version, body of that version) for a job or lookup; the tenant's default when no id.
    Unknown policies and versions are client errors (Invalid)."""
    ensure_tenant(s, t)
    if policy_id is None:
        p = repo.default_policy(s, t, PROFILE_SCHEMA)
        if p is None:
            raise Invalid("This sandbox has no default merge policy; name one in 'mergePolicy.id'.")
    else:
        p = repo.get_policy(s, t, policy_id)
        if p is None:
            raise Invalid(f"Merge policy '{policy_id}' does not exist in this sandbox.")
    if version is None:
        version = p.version
    v = repo.get_version(s, t, p.id, version)
    if v is None:
        raise Invalid(f"Merge policy '{p.body['id']}' has no version {version} (latest is {p.version}).")
    return p.body["id"], version, v.body


def version_body(s: Session, t: Tenant, policy_id: str, version: int) -> dict | None:
    """The body of one version, deleted policies included (a job created before the delete still runs)."""
    v = repo.get_version(s, t, policy_id, version)
    return v.body if v is not None else None


ORDER_FIELDS = ("id", "name", "version", "updateEpoch", "default", "isActiveOnEdge")


def query_policies(s: Session, t: Tenant, *, default: str | None, schema_name: str | None,
                   order_by: str | None) -> list[dict[str, Any]]:
    """The list view: `default` and `schema.name` filters, `orderBy` as `field`, `+field` or `-field`."""
    views = [policy_view(p) for p in list_policies(s, t)]
    if default is not None:
        want = as_flag(default)
        if want is None:
            raise Invalid(f"'default' must be a boolean, got {default!r}.")
        views = [v for v in views if v["default"] is want]
    if schema_name is not None:
        views = [v for v in views if v["schema"]["name"] == schema_name]
    if order_by:
        field = order_by.strip()
        descending = field.startswith("-")
        field = field.lstrip("+-")
        if field not in ORDER_FIELDS:
            raise Invalid(f"'orderBy' must name one of {', '.join(ORDER_FIELDS)} (optionally prefixed by - or +).")
        views.sort(key=lambda v: (v[field], v["id"]), reverse=descending)
    return views


# AEP: "If no default merge policy has been configured, the default is no profile merge and no identity
# stitching" - what a Profile lookup uses when the sandbox has no default and the client names none.
NO_DEFAULT_BODY = {"identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"}}


def resolve_for_lookup(s: Session, t: Tenant, policy_id: str | None) -> dict:
    """The latest body of the named policy (Invalid if unknown), else of the default, else NO_DEFAULT_BODY."""
    return resolve_lookup_version(s, t, policy_id)[2]


def resolve_lookup_version(s: Session, t: Tenant, policy_id: str | None) -> tuple[str | None, int | None, dict]:
    """(public id, latest version, body) of what `resolve_for_lookup` uses; (None, None, NO_DEFAULT_BODY) when
    the sandbox has no default and none is named."""
    ensure_tenant(s, t)
    if policy_id is None and repo.default_policy(s, t, PROFILE_SCHEMA) is None:
        return None, None, NO_DEFAULT_BODY
    return resolve(s, t, policy_id, None)


def default_policy_id(s: Session, t: Tenant) -> str | None:
    """The public id of the sandbox's default profile policy, if it has one."""
    p = repo.default_policy(s, t, PROFILE_SCHEMA)
    return p.body["id"] if p is not None else None
