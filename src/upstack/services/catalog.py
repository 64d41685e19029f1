"""Catalog domain: datasets (classes, profile enablement, filters) and the batch views they own."""

from __future__ import annotations

import fnmatch
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from upstack.lake import Lake
from upstack.schemas.catalog import check_dataset
from upstack.services.errors import Invalid, NotFound
from upstack.storage import catalog_repo as repo
from upstack.storage.models import Batch, Dataset
from upstack.tenant import Tenant

UNION_SCHEMA = "https://ns.adobe.com/xdm/context/profile__union"
MAX_NAME = Dataset.name.type.length  # the column's size
EDITABLE = ("name", "description", "schemaRef", "tags", "fileDescription", "classification", "namespace")


def now_ms() -> int:
    return int(time.time() * 1000)


def new_dataset_id() -> str:
    return uuid.uuid4().hex[:24]


def kind_of(schema_id: str | None) -> str:
    if schema_id == UNION_SCHEMA:
        return "export"
    if schema_id and "experienceevent" in schema_id.lower():
        return "event"
    return "profile"


_ENABLED = re.compile(r"^\s*enabled\s*:\s*true\s*$", re.IGNORECASE)


def is_profile_enabled(tags: Any) -> bool:
    if not isinstance(tags, dict):
        return False
    values = tags.get("unifiedProfile") or []
    if isinstance(values, str):
        values = [values]
    return any(isinstance(v, str) and _ENABLED.match(v) for v in values)


def _check_body(body: dict[str, Any], *, require_name: bool) -> None:
    if require_name and (not isinstance(body.get("name"), str) or not body["name"].strip()):
        raise Invalid("Dataset 'name' is required and must be a non-empty string.")
    if "name" in body and not isinstance(body["name"], str):
        raise Invalid("Dataset 'name' must be a string.")
    if len(body.get("name") or "") > MAX_NAME:  # PostgreSQL refuses a longer one (a 500); SQLite would keep it
        raise Invalid(f"Dataset 'name' must be at most {MAX_NAME} characters.")
    ref = body.get("schemaRef")
    if ref is not None and (not isinstance(ref, dict) or not isinstance(ref.get("id", ""), str)
                            or not isinstance(ref.get("contentType", ""), str)):
        raise Invalid("'schemaRef' must be an object with a string 'id' and a string 'contentType'.")
    for key in ("tags", "fileDescription", "classification"):
        if key in body and body[key] is not None and not isinstance(body[key], dict):
            raise Invalid(f"'{key}' must be an object.")
    check_dataset(body)  # the spec's enums (fileDescription.format, .charset)
    tags = body.get("tags") or {}
    for k, v in tags.items():
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise Invalid(f"Tag '{k}' must be an array of strings.")


def create_dataset(s: Session, t: Tenant, body: dict[str, Any]) -> Dataset:
    _check_body(body, require_name=True)
    stored = {k: body[k] for k in EDITABLE if body.get(k) is not None}
    t_ms = now_ms()
    ds = Dataset(id=new_dataset_id(), org=t.org, sandbox=t.sandbox, name=body["name"],
                 kind=kind_of((body.get("schemaRef") or {}).get("id")), profile_enabled=is_profile_enabled(body.get("tags")),
                 body=stored, version="1.0.0", created_ms=t_ms, updated_ms=t_ms)
    s.add(ds)
    s.flush()
    return ds


def list_datasets(s: Session, t: Tenant) -> Sequence[Dataset]:
    """A tenant's datasets, oldest first (the router pages and filters them)."""
    return repo.list_datasets(s, t)


def list_batches(s: Session, t: Tenant) -> Sequence[Batch]:
    """A tenant's batches, oldest first (the router pages and filters them)."""
    return repo.list_batches(s, t)


def get_dataset(s: Session, t: Tenant, dataset_id: str) -> Dataset:
    ds = repo.get_dataset(s, t, dataset_id)
    if ds is None:
        raise NotFound("DataSet not found.")
    return ds


def patch_dataset(s: Session, t: Tenant, dataset_id: str, body: dict[str, Any], *, replace: bool = False) -> Dataset:
    ds = get_dataset(s, t, dataset_id)
    _check_body(body, require_name=replace)
    stored = {} if replace else dict(ds.body)
    for k in EDITABLE:
        if k in body:
            if body[k] is None:
                stored.pop(k, None)
            else:
                stored[k] = body[k]
    if "schemaRef" in body:
        ds.kind = kind_of((stored.get("schemaRef") or {}).get("id"))
    ds.body = stored
    ds.name = stored.get("name", ds.name)
    ds.profile_enabled = is_profile_enabled(stored.get("tags"))
    ds.updated_ms = now_ms()
    major, minor, patch = (ds.version.split(".") + ["0", "0"])[:3]
    ds.version = f"{major}.{minor}.{int(patch) + 1}"
    return ds


def delete_dataset(s: Session, t: Tenant, lake: Lake, dataset_id: str) -> None:
    get_dataset(s, t, dataset_id)
    repo.delete_dataset_rows(s, t, dataset_id)
    # Rows go first (same transaction); the files follow. A crash in between leaves unreferenced files,
    # never a dataset that points at missing ones.
    s.flush()
    lake.remove_dataset(t.org, t.sandbox, dataset_id)


def get_batch(s: Session, t: Tenant, batch_id: str) -> Batch:
    b = repo.get_batch(s, t, batch_id)
    if b is None:
        raise NotFound("Batch not found.")
    return b


# ---- Catalog list filters (`name=a,b`, `name=!a`, `*` wildcard) -------------------------------------------

def _matches(value: Any, expr: str) -> bool:
    negate = expr.startswith("!")
    options = [o for o in (expr[1:] if negate else expr).split(",") if o != ""]
    text = "" if value is None else str(value)
    hit = any(fnmatch.fnmatchcase(text, o) if "*" in o else text == o for o in options)
    return not hit if negate else hit


def apply_filters(items: Sequence[dict[str, Any]], filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        ok = True
        for key, exprs in filters.items():
            value: Any = item
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if not all(_matches(value, e) for e in exprs):
                ok = False
                break
        if ok:
            out.append(item)
    return out
