"""The three AEP paging styles, one helper each: Catalog start/limit map form, export-job cursor, _page/children."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from starlette.datastructures import QueryParams

from upstack.services.errors import Invalid

CATALOG_RESERVED = {"limit", "start", "orderBy", "orderby", "properties", "continuationToken"}

_INTEGER = re.compile(r"[+-]?[0-9]+")
# Query integers become SQL parameters, which are 64-bit: a larger one fails in the driver (a 500). Paging values
# are clamped into this range, which changes no answer: no count, offset, time or id comes near it.
SQL_INT_MIN, SQL_INT_MAX = -(2**63), 2**63 - 1


def _sql_int(value: int) -> int:
    return max(SQL_INT_MIN, min(value, SQL_INT_MAX))


def _whole(text: str) -> int:
    """The value of ASCII digits (with a sign); past 30 digits every bound is passed anyway, and int() refuses
    thousands of digits outright."""
    return int(text) if len(text) <= 30 else (-(10**30) if text.startswith("-") else 10**30)


def int_param(params: QueryParams, name: str, default: int, *, lo: int = 0, hi: int | None = None,
              clamp: bool = False) -> int:
    raw = params.getlist(name)
    if not raw:
        return default
    text = raw[-1].strip()
    if not _INTEGER.fullmatch(text):
        raise Invalid(f"Query parameter '{name}' must be an integer, got '{raw[-1][:100]}'.")
    value = _whole(text)
    if clamp:
        return max(lo, min(value, hi if hi is not None else value))
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise Invalid(f"Query parameter '{name}' must be {bound}, got {text[:100]}.")
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
        rows.sort(key=lambda r: (*_json_order(r.get(field)), r["id"]), reverse=direction == "desc")
    page = rows[start:start + limit]
    props = [p.strip() for p in params.get("properties", "").split(",") if p.strip()]
    out = {}
    for row in page:
        ident = row.pop("id")
        out[ident] = {k: v for k, v in row.items() if k in props} if props else row
    return out


def _json_order(value: Any) -> tuple:
    """A sort key for any JSON value: absent (None) last, then numbers, strings, booleans, then arrays and objects
    by their canonical JSON text (keys sorted). Objects are ordered rather than refused: a client asking for
    `orderBy=asc:tags` expects a stable order, as for any other property, and comparing an object with another
    (or with a number, where a free-form property such as `description` mixes types) must not fail."""
    if value is None:
        return (True, 0, 0)
    if isinstance(value, bool):
        return (False, 2, int(value))
    if isinstance(value, int | float):
        return (False, 0, value)
    if isinstance(value, str):
        return (False, 1, value)
    return (False, 3, json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


# ---- Export jobs: cursor paging `{"records","page","link":{"next"}}` (CONTRACT §7) -------------------------

from dataclasses import dataclass  # noqa: E402  (appended section; the file is shared, so append-only)
from urllib.parse import urlencode  # noqa: E402

EXPORT_MAX_LIMIT = 1000
# Public sort names (and the aliases clients send) -> the field a page is ordered by.
EXPORT_SORT_FIELDS = {"createdTime": "createdTime", "creationTime": "createdTime", "created": "createdTime",
                      "updateTime": "updateTime", "updatedTime": "updateTime", "updated": "updateTime"}


@dataclass(frozen=True)
class CursorQuery:
    sort_field: str  # "createdTime" | "updateTime"
    descending: bool
    after: tuple[int, int] | None  # (sort value, id) of the last row already seen
    skip: int
    limit: int  # rows wanted on the page (fetch one more to know whether there is a next page)


def parse_cursor_query(params: QueryParams) -> CursorQuery:
    """`limit` (default 20, clamped to 1..1000, never an error), `offset` (`<value>_<id>` cursor), `start`
    (rows to skip), `page` (1-based page number), `sort` (`field:asc|desc`, default `createdTime:desc`)."""
    limit = int_param(params, "limit", 20, lo=1, hi=EXPORT_MAX_LIMIT, clamp=True)
    start = int_param(params, "start", 0, lo=0, hi=SQL_INT_MAX, clamp=True)
    page = int_param(params, "page", 1, lo=1, hi=SQL_INT_MAX, clamp=True)
    raw_sort = (params.getlist("sort") or ["createdTime:desc"])[-1].strip()
    field, _, direction = raw_sort.partition(":")
    if field.startswith(("-", "+")) and not direction:  # "-updateTime" style
        field, direction = field[1:], "desc" if field[0] == "-" else "asc"
    direction = (direction or "desc").lower()
    if field not in EXPORT_SORT_FIELDS or direction not in ("asc", "desc"):
        raise Invalid(f"'sort' must look like 'createdTime:desc' or 'updateTime:asc', got '{raw_sort}'.")
    after = None
    raw_offset = (params.getlist("offset") or [""])[-1].strip()
    if raw_offset:
        value, sep, ident = raw_offset.partition("_")
        if not sep or not re.fullmatch(r"-?[0-9]+", value) or not re.fullmatch(r"[0-9]+", ident):
            raise Invalid(f"'offset' must be the '<time>_<id>' cursor of a previous page, got '{raw_offset[:100]}'.")
        after = (_sql_int(_whole(value)), _sql_int(_whole(ident)))
    skip = _sql_int(start + (page - 1) * limit)  # beyond the rows: an empty page
    return CursorQuery(EXPORT_SORT_FIELDS[field], direction == "desc", after, skip, limit)


def export_cursor_page(params: QueryParams, query: CursorQuery, rows: Sequence[tuple[int, int, dict[str, Any]]],
                       *, path: str = "/export/jobs/", keep: tuple[str, ...] = ("sort", "status")) -> dict:
    """Shape a page from up to `query.limit + 1` rows `(sort value, id, record)` fetched after the cursor.
    `link.next` carries the cursor of the page's last row (and the filters in `keep`); "" on the last page."""
    page = list(rows[: query.limit])
    cursor = f"{page[-1][0]}_{page[-1][1]}" if page else ""
    next_link = ""
    if len(rows) > query.limit and page:
        extra = [(k, params.getlist(k)[-1]) for k in keep if params.getlist(k)]
        next_link = f"{path}?{urlencode([('limit', query.limit), ('offset', cursor), *extra])}"
    return {
        "records": [r for _, _, r in page],
        "page": {"sortField": query.sort_field, "sort": "desc" if query.descending else "asc",
                 "pageOffset": cursor, "pageSize": len(page)},
        "link": {"next": next_link},
    }


# ---- Profile `_page`/`children` lists (merge policies) ---------------------------------------------------

def children_page(params: QueryParams, rows: Sequence[dict[str, Any]], path: str,
                  *, keep: tuple[str, ...] = ()) -> dict:
    """`{"_page":{"totalCount","pageSize","count","next"},"children",_links.next.href}` over a short list:
    `limit` (default 20, clamped to 1..1000) and `start` (0-based offset)."""
    limit = int_param(params, "limit", 20, lo=1, hi=1000, clamp=True)
    start = int_param(params, "start", 0, lo=0, clamp=True)
    page = list(rows[start:start + limit])
    more = start + limit < len(rows)
    extra = [(k, params.getlist(k)[-1]) for k in keep if params.getlist(k)]
    href = f"{path}?{urlencode([('start', start + limit), ('limit', limit), *extra])}" if more else ""
    return {"_page": {"totalCount": len(rows), "pageSize": limit, "count": len(page),
                      "next": str(start + limit) if more else ""},
            "children": page, "_links": {"next": {"href": href}}}


# ---- Segmentation lists (`/segment/definitions`): start/page/limit, `{"<items>","page","link"}` ---------------

SEGMENT_MAX_LIMIT = 1000


def offset_query(params: QueryParams, *, default_limit: int = 100) -> tuple[int, int]:
    """(rows to skip, limit): `limit` clamped to 1..1000 (never an error), `start` rows to skip, `page` 0-based
    pages of `limit` after it."""
    limit = int_param(params, "limit", default_limit, lo=1, hi=SEGMENT_MAX_LIMIT, clamp=True)
    start = int_param(params, "start", 0, lo=0, hi=SQL_INT_MAX, clamp=True)
    page = int_param(params, "page", 0, lo=0, hi=SQL_INT_MAX, clamp=True)
    return _sql_int(start + page * limit), limit


def offset_link(params: QueryParams, path: str, skip: int, limit: int, shown: int, more: bool,
                *, keep: tuple[str, ...] = ()) -> dict[str, str]:
    """`{"next": href}` to the page after this one (with the filters in `keep`), `{}` on the last page."""
    if not more:
        return {}
    extra = [(k, params.getlist(k)[-1]) for k in keep if params.getlist(k)]
    return {"next": f"{path}?{urlencode([('start', skip + shown), ('limit', limit), *extra])}"}
