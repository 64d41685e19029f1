"""Segment definitions (CONTRACT §11): a PQL rule checked by upstack.segments when it is written, the merge
policy it is evaluated with, a name unique per tenant, and the list's filters, sort and pages."""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from upstack.schemas.merge_policies import PROFILE_SCHEMA, as_flag
from upstack.schemas.segment_definitions import (
    CreateSegmentDefinition,
    PatchSegmentDefinition,
    SegmentDefinitionBulkGet,
    SegmentEvaluationInfo,
    SegmentExpression,
)
from upstack.segments import PqlError, compile_pql
from upstack.services import merge_policies as mp
from upstack.services.errors import Invalid, NotFound, Unprocessable
from upstack.services.tenancy import sandbox_view
from upstack.storage import segment_repo as repo
from upstack.storage import ups_repo
from upstack.storage.models import SegmentDefinition
from upstack.tenant import Tenant

MODES = ("batch", "continuous", "synchronous")
MAX_DEFINITIONS = 4_000  # per sandbox: AEP's guardrail for audiences (SEGMENTATION.md §5); bounds the table too
SORT_FIELDS = ("creationTime", "updateTime", "name", "id")
log = logging.getLogger("upstack.segments")
NO_SCHEMA = pa.schema([])  # every path is unknown, so NULL: only what PQL itself refuses fails


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---- views ---------------------------------------------------------------------------------------------

def definition_view(d: SegmentDefinition) -> dict[str, Any]:
    body = d.body
    view = {"id": d.id, "name": d.name, "description": body.get("description"), "imsOrgId": d.org,
            "sandbox": sandbox_view(d.org, d.sandbox), "schema": {"name": PROFILE_SCHEMA}, "profileInstanceId": "ups",
            "expression": body["expression"],
            "evaluationInfo": {m: {"enabled": bool(getattr(d, m))} for m in MODES},
            "mergePolicyId": body.get("mergePolicyId"), "ttlInDays": body.get("ttlInDays"),
            "payloadSchema": body.get("payloadSchema"), "dataGovernancePolicy": {"excludeOptOut": True},
            "version": d.version, "creationTime": d.created_ms, "updateTime": d.updated_ms,
            "updateEpoch": d.updated_ms // 1000}
    return {k: v for k, v in view.items() if v is not None}


# ---- checks --------------------------------------------------------------------------------------------

def check_expression(expression: SegmentExpression) -> dict[str, str]:
    """The stored expression, once its PQL parses and compiles. Compiled against a schema without fields, so that
    every construct PQL or this compiler refuses is a 400 when the definition is written, not when it first runs
    (type checks that need the profile's fields happen at evaluation)."""
    if expression.format != "pql/text":
        raise Invalid("Only 'pql/text' expressions are supported by this server for now; 'expression.format' is "
                      f"'{expression.format}'.")
    try:
        compile_pql(expression.value, NO_SCHEMA, datetime.now(UTC))
    except PqlError as e:
        where = f" (line {e.line}, column {e.column})" if e.line and f"line {e.line}" not in e.message else ""
        raise Invalid(f"Invalid segment definition: 'expression.value' is not valid PQL: {e.message}{where}.") \
            from None
    except Exception as e:  # noqa: BLE001
        # A gap of the compiler (fuzzing once found `select X from a = 1` failing inside it; fixed, with a test in
        # tests/segments/test_compile.py) is still the client's 400, never a 500.
        # The PQL is client data: only the kind of failure is logged.
        log.warning("segment expression could not be compiled", extra={"error": type(e).__name__})
        raise Invalid("Invalid segment definition: 'expression.value' could not be compiled; this server does not "
                      "support this expression.") from None
    return {"type": "PQL", "format": "pql/text", "value": expression.value}


def _check_policy(s: Session, t: Tenant, policy_id: str | None) -> str | None:
    """The merge policy the definition is evaluated with: the one named, else the sandbox's default now. An id
    naming no policy of this sandbox is a 400 like any other invalid member (422 in AEP's definitions API means
    only "this name exists, use PATCH", which a client may act on; it must not mean something else here)."""
    mp.ensure_tenant(s, t)
    if policy_id is None:
        return mp.default_policy_id(s, t)
    if ups_repo.get_policy(s, t, policy_id) is None:
        raise Invalid(f"'mergePolicyId' names merge policy '{policy_id}', which does not exist in this sandbox.")
    return policy_id


def _check_name(s: Session, t: Tenant, name: str, *, other_than: str | None = None) -> None:
    if repo.name_taken(s, t, name, other_than=other_than):
        raise _exists(name)


def _exists(name: str) -> Unprocessable:
    return Unprocessable(f"A segment definition named '{name}' already exists in this sandbox. To change it, use "
                         "PATCH /segment/definitions/{id}.")


def _modes(info: SegmentEvaluationInfo | None, current: dict[str, bool] | None) -> dict[str, bool]:
    """Without `evaluationInfo` a new definition is batch only; a mode left out of one is disabled on create and
    keeps its value on PATCH."""
    if info is None:
        return current or {"batch": True, "continuous": False, "synchronous": False}
    out = dict(current or {m: False for m in MODES})
    for m in MODES:
        mode = getattr(info, m)
        if mode is not None:
            out[m] = mode.enabled
    return out


def _save(s: Session, d: SegmentDefinition, changes: dict[str, Any] | None, name: str) -> SegmentDefinition:
    if not repo.save(s, d, changes):
        raise _exists(name)
    return d


# ---- operations ----------------------------------------------------------------------------------------

def get_definition(s: Session, t: Tenant, definition_id: str) -> SegmentDefinition:
    d = repo.get_definition(s, t, definition_id)
    if d is None:
        raise NotFound(f"Segment definition '{definition_id}' not found.")
    return d


def create_definition(s: Session, t: Tenant, body: CreateSegmentDefinition) -> SegmentDefinition:
    expression = check_expression(body.expression)
    mp.ensure_tenant(s, t, lock=True)  # one create or rename of the tenant at a time: its count and names hold
    _check_name(s, t, body.name)
    if repo.count(s, t) >= MAX_DEFINITIONS:
        raise Invalid(f"A sandbox can have at most {MAX_DEFINITIONS} segment definitions; delete one first.")
    policy_id = _check_policy(s, t, body.mergePolicyId)
    now = _now_ms()
    modes = _modes(body.evaluationInfo, None)
    stored = {"expression": expression, "description": body.description, "mergePolicyId": policy_id,
              "ttlInDays": body.ttlInDays, "payloadSchema": body.payloadSchema}
    d = SegmentDefinition(id=str(uuid.uuid4()), org=t.org, sandbox=t.sandbox, name=body.name,
                          body={k: v for k, v in stored.items() if v is not None}, version=1, created_ms=now,
                          updated_ms=now, **modes)
    return _save(s, d, None, d.name)


def patch_definition(s: Session, t: Tenant, definition_id: str, body: PatchSegmentDefinition) -> SegmentDefinition:
    """Each member sent replaces the stored one (null or absent members are left as they are); the version goes
    up when the expression changes, the update times on every PATCH. Nothing of the row changes before every
    check passed."""
    d = get_definition(s, t, definition_id)
    stored = dict(d.body)
    changes: dict[str, Any] = {}
    sent = body.model_fields_set
    if body.expression is not None:
        expression = check_expression(body.expression)
        if expression != stored["expression"]:
            stored["expression"] = expression
            changes["version"] = d.version + 1
    if body.name is not None and body.name != d.name:
        mp.ensure_tenant(s, t, lock=True)
        _check_name(s, t, body.name, other_than=d.id)
        changes["name"] = body.name
    if body.mergePolicyId is not None:
        stored["mergePolicyId"] = _check_policy(s, t, body.mergePolicyId)
    for member in ("description", "ttlInDays", "payloadSchema"):
        if member in sent and getattr(body, member) is not None:
            stored[member] = getattr(body, member)
    changes.update(_modes(body.evaluationInfo, {m: getattr(d, m) for m in MODES}))
    changes.update(body=stored, updated_ms=max(_now_ms(), d.updated_ms))
    return _save(s, d, changes, changes.get("name", d.name))


def delete_definition(s: Session, t: Tenant, definition_id: str) -> dict[str, Any]:
    d = get_definition(s, t, definition_id)
    repo.delete(s, d)
    return {"status": True, "message": f"Segment definition '{definition_id}' deleted."}


def bulk_get(s: Session, t: Tenant, body: SegmentDefinitionBulkGet, request_id: str) -> dict[str, Any]:
    """{"results": {id: definition | per-id 404}}, as merge policies' bulk-get answers (the same service family,
    so a client reads both alike): an id no definition has gets its own error entry rather than being left out,
    so every id asked for is answered; NotFound when none exists."""
    ids = [item.id for item in body.ids]
    found = repo.get_many(s, t, ids)
    results: dict[str, Any] = {}
    for sid in dict.fromkeys(ids):
        d = found.get(sid)
        results[sid] = definition_view(d) if d is not None else {"requestId": request_id, "errors": {"404": [
            {"code": "UPAPI-113430-404", "message": f"Segment definition '{sid}' not found."}]}}
    if not found:
        raise NotFound("None of the segment definitions asked for exists in this sandbox.")
    return {"results": results}


def parse_sort(raw: str | None) -> list[tuple[str, bool]]:
    """`field:asc|desc`, several comma-separated (`name:asc,creationTime:desc`); default `creationTime:desc`."""
    if raw is None or not raw.strip():
        return [("creationTime", True)]
    order = []
    for part in raw.split(",")[:len(SORT_FIELDS)]:
        field, _, direction = part.strip().partition(":")
        direction = (direction or "asc").strip().lower()
        if field not in SORT_FIELDS or direction not in ("asc", "desc"):
            raise Invalid(f"'sort' must look like 'creationTime:desc' with a field among {', '.join(SORT_FIELDS)}, "
                          f"got '{raw[:100]}'.")
        order.append((field, direction == "desc"))
    return order


def parse_modes(raw: dict[str, str | None]) -> dict[str, bool]:
    """The `evaluationInfo.<mode>.enabled` filters given (true or false, in any case)."""
    modes = {}
    for mode, text in raw.items():
        if text is not None:
            flag = as_flag(text)
            if flag is None:
                raise Invalid(f"'evaluationInfo.{mode}.enabled' must be true or false, got '{text[:100]}'.")
            modes[mode] = flag
    return modes


def list_page(s: Session, t: Tenant, *, filters: dict[str, str | None], sort: str | None, skip: int,
              limit: int) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    """(definitions of the page, the `page` object, whether more follow); `filters` by mode, as the query says."""
    order = parse_sort(sort)
    modes = parse_modes(filters)
    total, rows = repo.page(s, t, modes=modes, order=order, skip=skip, limit=limit)
    page = {"totalCount": total, "totalPages": math.ceil(total / limit), "sortField": order[0][0],
            "sort": "desc" if order[0][1] else "asc", "pageSize": len(rows), "limit": limit}
    return [definition_view(d) for d in rows], page, skip + len(rows) < total
