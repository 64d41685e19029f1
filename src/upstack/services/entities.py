"""Profile Access (CONTRACT §9): one merged profile, or its events, through the same engine path as exports.

A lookup is planned in a short transaction (policy, lake files) and merged outside it, so a slow merge
never holds a database transaction open. A profile lookup is answered from the policy's current snapshot
(`lake.snapshots`: the export's own row for that profile, found by an identity index) when there is one;
otherwise, or when the identity is not in the snapshot's index (an oversized graph, an unknown identity),
the engine merges it directly, and a missing snapshot is queued for building.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
from sqlalchemy.orm import Session

from upstack.lake import Lake
from upstack.lake.parquet import json_safe as _preview_json
from upstack.lake.snapshots import SnapshotRow, forget, open_snapshot
from upstack.profiles import (
    ComponentTooLarge,
    DatasetInput,
    ExportQuery,
    MergePolicySpec,
    merge_profiles,
    profile_events,
)
from upstack.schemas.entities import (  # noqa: F401 - PATH's schema names, importable from here as before
    EVENT,
    PROFILE,
    EntitiesRequest,
    EntityDeleteQuery,
    EntityQuery,
)
from upstack.services import merge_policies, profile_deletions, profile_inputs, profile_snapshots
from upstack.services.errors import NotFound, Unprocessable
from upstack.services.export_jobs import policy_spec
from upstack.tenant import Tenant

PATH = "/data/core/ups/access/entities"
# Events sharing the page boundary's timestamp that a resumed page may have to skip (then it reads all).
CURSOR_SLACK = 100


@dataclass(frozen=True)
class Lookup:
    """A planned request: what to merge (read in a transaction) and what was asked."""

    inputs: list[DatasetInput]
    spec: MergePolicySpec
    identity: tuple[str, str]
    fields: tuple[str, ...] | None
    events: bool
    query: EntityQuery | None  # the GET's query (an events page repeats it for the next one)
    snapshot: Path | None = None  # the policy's current profile snapshot, when built
    deletions: profile_deletions.Deletions = profile_deletions.NONE  # deleted profiles, left out


# ---- planning (the request is typed: schemas/entities.py) -----------------------------------------------

def plan(s: Session, lake: Lake, t: Tenant, query: EntityQuery) -> Lookup:
    """Read what the merge of one lookup needs (the policy, the lake's files, deleted profiles)."""
    return _plan(s, lake, t, query.identity, query.fields, query.events, query.mergePolicyId, query)


def _plan(s: Session, lake: Lake, t: Tenant, identity: tuple[str, str], fields: tuple[str, ...] | None,
          events: bool, policy_id: str | None, query: EntityQuery | None = None) -> Lookup:
    public_id, version, body = merge_policies.resolve_lookup_version(s, t, policy_id or None)
    snapshot = None if events else _current_snapshot(s, lake, t, public_id, version)
    return Lookup(profile_inputs.dataset_inputs(s, lake, t), policy_spec(body), identity, fields, events,
                  query, snapshot, profile_deletions.load(s, t))


def _current_snapshot(s: Session, lake: Lake, t: Tenant, policy_id: str | None, version: int | None) -> Path | None:
    """The policy's snapshot of the lake as it is now; when there is none, a build is queued (debounced)."""
    if policy_id is None or version is None:  # no default policy: nothing to name a snapshot by
        return None
    _, path = profile_snapshots.current(s, lake, t, policy_id, version)
    if path is None:
        profile_snapshots.request_build(s, t, policy_id)
    return path


def plan_many(s: Session, lake: Lake, t: Tenant, body: EntitiesRequest) -> list[Lookup]:
    """POST /access/entities (profiles of several identities): one planned lookup per identity."""
    public_id, version, policy = merge_policies.resolve_lookup_version(s, t, body.mergePolicyId or None)
    snapshot = _current_snapshot(s, lake, t, public_id, version)
    inputs = profile_inputs.dataset_inputs(s, lake, t)
    deletions = profile_deletions.load(s, t)
    return [Lookup(inputs, policy_spec(policy), pair, body.fields, False, None, snapshot, deletions)
            for pair in body.pairs]


def profiles(lookups: list[Lookup]) -> dict[str, Any]:
    """The map form for every identity that has a profile (one entry per profile); 404 when none has."""
    out: dict[str, Any] = {}
    for lookup in lookups:
        try:
            out.update(profile(lookup))
        except NotFound:
            continue
    if not out:
        raise NotFound("No profile found for any of the requested identities.")
    return out


# ---- JSON ----------------------------------------------------------------------------------------------

def json_safe(value: Any) -> Any:
    """Arrow's Python values as JSON (the lake's preview rules: ISO 8601 UTC timestamps, base64 bytes, NaN as
    null), without null members: an entity lists what the profile has."""
    return _drop_nulls(_preview_json(value))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _iso(ms: int | None) -> str | None:
    if ms is None or ms < 0:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- profile -------------------------------------------------------------------------------------------

def profile(lookup: Lookup) -> dict[str, Any]:
    """{"<profile id>": {entityId, sources, entity, lastModifiedAt}}: 404 unknown identity, 422 oversized graph."""
    found = _from_snapshot(lookup)
    if found is not None:
        return found
    ns, ident = lookup.identity
    try:
        result = merge_profiles(lookup.inputs, lookup.spec, ExportQuery(identity=lookup.identity,
                                                                        fields=lookup.fields))
    except ComponentTooLarge as exc:
        raise Unprocessable(f"The identity graph of {ns}:{ident} is too large to merge: {exc}.") from None
    profiles, metas = result.profiles, result.meta
    deleted = profile_deletions.deleted_mask(lookup.deletions, lookup.spec.identity_graph, profiles, metas)
    if deleted is not None:
        profiles, metas = profiles.filter(pa.array(~deleted)), metas.filter(pa.array(~deleted))
    if profiles.num_rows == 0:
        raise NotFound(f"No profile found for identity '{ident}' in namespace '{ns}'.")
    out = {}
    for meta, entity in zip(metas.to_pylist(), profiles.to_pylist(maps_as_pydicts="lossy"), strict=True):
        out[meta["profile_id"]] = {"entityId": meta["entity_id"], "sources": list(meta["sources"] or []),
                                   "entity": json_safe(entity), "lastModifiedAt": _iso(meta["last_modified_ms"])}
    return out


def _from_snapshot(lookup: Lookup) -> dict[str, Any] | None:
    """The answer from the current snapshot, or None when the direct merge must answer: no snapshot, the
    identity not in its index (unknown: 404; in a graph too large to export: 422), or the legacy `identities`
    view asked for (the snapshot stores the export without it)."""
    legacy = lookup.fields is not None and any(f == "identities" or f.startswith("identities.") for f in lookup.fields)
    if lookup.snapshot is None or legacy:
        return None
    ns, ident = lookup.identity
    try:
        row = open_snapshot(lookup.snapshot).probe(ns, ident)
    except FileNotFoundError:  # replaced by a newer snapshot and removed since the lookup was planned
        forget(lookup.snapshot)
        return None
    if row is None:
        return None
    if profile_deletions.hides(lookup.deletions, lookup.spec.identity_graph, lookup.identity, row.entity,
                               row.last_modified_ms):
        raise NotFound(f"No profile found for identity '{ident}' in namespace '{ns}'.")
    return {row.profile_id: _snapshot_view(row, ident, lookup.fields)}


def _snapshot_view(row: SnapshotRow, ident: str, fields: tuple[str, ...] | None) -> dict[str, Any]:
    entity = json_safe(row.entity)
    if fields is not None:
        entity = project(entity, fields)
    return {"entityId": ident, "sources": row.sources, "entity": entity, "lastModifiedAt": _iso(row.last_modified_ms)}


def project(entity: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The engine's projection (profiles.load.Selector) on a merged JSON object: a dot path selects its subtree,
    a path into a leaf (a list, a scalar) keeps the whole leaf, `identityMap` is always kept, objects left
    without members are dropped (the engine makes them null)."""
    def related(p: str) -> bool:
        return any(p == f or p.startswith(f + ".") or f.startswith(p + ".") for f in fields)

    def walk(obj: dict[str, Any], prefix: str) -> dict[str, Any]:
        out = {}
        for key, value in obj.items():
            p = f"{prefix}{key}"
            if isinstance(value, dict):
                if related(p):
                    kept = walk(value, p + ".")
                    if kept:
                        out[key] = kept
            elif related(p):
                out[key] = value
        return out

    kept = walk({k: v for k, v in entity.items() if k != "identityMap"}, "")
    return {"identityMap": entity["identityMap"], **kept} if "identityMap" in entity else kept


# ---- events --------------------------------------------------------------------------------------------

def events(lookup: Lookup) -> dict[str, Any]:
    """`_page`/`children` of the profile's events by timestamp, `limit` per page (default and max 1000);
    `startTime` inclusive, `endTime` exclusive (epoch ms). The next page resumes at an event id (`start`)."""
    q = lookup.query  # an events lookup is planned from its query (`plan`)
    limit, descending = q.page_size, q.orderby == "-timestamp"
    start_ms, end_ms, cursor = q.startTime, q.endTime, q.start
    rows = _fetch(lookup, start_ms, end_ms, limit, descending, cursor)
    if not rows:
        profile(lookup)  # raises 404 when the identity is unknown; a known one just has no events here
    page, rest = rows[:limit], rows[limit:]
    related_id = lookup.identity[1]
    children = [{"relatedEntityId": related_id, "entityId": r["entity_id"], "timestamp": r["timestamp_ms"],
                 "entity": json_safe(r["entity"])} for r in page]
    href = ""
    if rest:
        nxt = dict(q.raw, start=rest[0]["entity_id"] or "")
        # Narrow the window to the next event's timestamp so the next page reads little before its cursor.
        if rest[0]["timestamp_ms"] is not None:
            if descending:
                nxt["endTime"] = str(rest[0]["timestamp_ms"] + 1)
            else:
                nxt["startTime"] = str(rest[0]["timestamp_ms"])
        href = f"{PATH}?{urlencode(nxt)}"
    return {"_page": {"orderby": "-timestamp" if descending else "timestamp", "start": page[0]["entity_id"] if page
                      else "", "count": len(page), "next": rest[0]["entity_id"] if rest else ""},
            "children": children, "_links": {"next": {"href": href}}}


def _fetch(lookup: Lookup, start_ms: int | None, end_ms: int | None, limit: int, descending: bool,
           cursor: str | None) -> list[dict]:
    """limit + 1 events from the cursor event on (the extra one tells whether there is a next page)."""
    def read(n: int) -> list[dict]:
        try:
            table: pa.Table = profile_events(lookup.inputs, lookup.spec, lookup.identity, start_ms=start_ms,
                                             end_ms=None if end_ms is None else end_ms - 1, limit=n,
                                             descending=descending, fields=lookup.fields)
        except ComponentTooLarge as exc:
            raise Unprocessable(f"The identity graph is too large to merge: {exc}.") from None
        return table.to_pylist(maps_as_pydicts="lossy")

    if cursor is None:
        return read(limit + 1)
    want = limit + 1 + CURSOR_SLACK
    rows = read(want)
    if cursor not in {r["entity_id"] for r in rows} and len(rows) == want:
        rows = read(2**62)
    at = next((i for i, r in enumerate(rows) if r["entity_id"] == cursor), 0)
    return rows[at:at + limit + 1]


# ---- delete --------------------------------------------------------------------------------------------

def plan_delete(s: Session, lake: Lake, t: Tenant, query: EntityDeleteQuery) -> Lookup:
    """The lookup that tells whether the identity has a profile (`check_deletable`)."""
    return _plan(s, lake, t, query.identity, None, False, query.mergePolicyId)


def check_deletable(lookup: Lookup) -> None:
    """404 when the identity has no profile (or it is deleted already); a graph too large to merge is still
    a profile that can be deleted."""
    try:
        profile(lookup)
    except Unprocessable:
        pass
