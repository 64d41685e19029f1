"""The three AEP paging styles, one helper each: Catalog start/limit map form, export-job cursor, _page/children."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.datastructures import QueryParams

from upstack.services.errors import Invalid

CATALOG_RESERVED = {"limit", "start", "orderBy", "orderby", "properties", "continuationToken"}


def int_param(params: QueryParams, name: str, default: int, *, lo: int = 0, hi: int | None = None,
              clamp: bool = False) -> int:
    raw = params.getlist(name)
    if not raw:
        return default
    try:
        value = int(raw[-1])
    except ValueError:
        raise Invalid(f"Query parameter '{name}' must be an integer, got '{raw[-1]}'.") from None
    if clamp:
        return max(lo, min(value, hi if hi is not None else value))
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise Invalid(f"Query parameter '{name}' must be {bound}, got {value}.")
    return value


def catalog_page(params: QueryParams, items: Sequence[tuple[str, dict[str, Any]]],
                 filter_fn: Callable[[list[dict[str, Any]], dict[str, list[str]]], list[dict[str, Any]]]) -> dict:
    """Catalog map form `{"<id>": {...}}` with limit (1..100), start, orderBy, properties and simple filters."""
    limit = int_param(params, "limit", 20, lo=1, hi=100)
    start = int_param(params, "start", 0, lo=0)
    order = (params.get("orderBy") or params.get("orderby") or "").strip()
    rows = [dict(v, id=k) for k, v in items]
    filters: dict[str, list[str]] = {}
    for key, value in params.multi_items():
        if key not in CATALOG_RESERVED:
            filters.setdefault(key, []).append(value)
    if filters:
        rows = filter_fn(rows, filters)
    if order:
        direction, _, field = order.rpartition(":")
        if direction not in ("", "asc", "desc"):
            raise Invalid(f"orderBy must look like 'desc:created', got '{order}'.")
        rows.sort(key=lambda r: (r.get(field) is None, r.get(field) if r.get(field) is not None else 0, r["id"]),
                  reverse=direction == "desc")
    page = rows[start:start + limit]
    props = [p.strip() for p in params.get("properties", "").split(",") if p.strip()]
    out = {}
    for row in page:
        ident = row.pop("id")
        out[ident] = {k: v for k, v in row.items() if k in props} if props else row
    return out
