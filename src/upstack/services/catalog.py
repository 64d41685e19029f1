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
from upstack.schemas.catalog import CatalogDataSetPatch, CatalogDataSetRequest
from upstack.services import profile_store
from upstack.services.errors import NotFound
from upstack.storage import catalog_repo as repo
from upstack.storage.models import Batch, Dataset
from upstack.tenant import Tenant

UNION_SCHEMA = "https://ns.adobe.com/xdm/context/profile__union"


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


def create_dataset(s: Session, t: Tenant, body: CatalogDataSetRequest) -> Dataset:
    stored = {k: v for k, v in body.kept().items() if v is not None}
    t_ms = now_ms()
    ds = Dataset(id=new_dataset_id(), org=t.org, sandbox=t.sandbox, name=body.name, kind=kind_of(body.schema_id()),
                 profile_enabled=is_profile_enabled(body.tags), body=stored, version="1.0.0", created_ms=t_ms,
                 updated_ms=t_ms)
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


def patch_dataset(s: Session, t: Tenant, dataset_id: str, body: CatalogDataSetPatch, *,
                  replace: bool = False) -> Dataset:
    """PATCH changes the members given (null removes one); PUT (`replace`, a CatalogDataSetRequest) replaces
    what the dataset keeps."""
    ds = get_dataset(s, t, dataset_id)
    stored = {} if replace else dict(ds.body)
    given = body.kept()
    for k, value in given.items():
        if value is None:
            stored.pop(k, None)
        else:
            stored[k] = value
    if "schemaRef" in given:
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
    profile_store.request_sync(s, t)  # its records leave the store's index, their components split
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
