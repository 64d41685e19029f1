"""Profile Access (CONTRACT §9): one merged profile, or its events, through the same engine path as exports.

A lookup is planned in a short transaction (policy, lake files, the identity's records) and merged outside
it, so a slow merge never holds a database transaction open. The profile store (services/profile_store.py)
gives the rows of the identity's component, and the engine merges only those: the export's row for that
profile, at the cost of one component. A tenant whose store does not index every batch yet (a lake from an
older version, being indexed) is merged whole meanwhile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
from sqlalchemy.orm import Session

from upstack.lake import Lake
from upstack.lake.parquet import json_safe as _preview_json
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
from upstack.services import merge_policies, profile_deletions, profile_inputs, profile_store
from upstack.services.errors import NotFound, Unprocessable
from upstack.services.export_jobs import policy_spec
from upstack.tenant import Tenant

PATH = "/data/core/ups/access/entities"
# Events sharing the page boundary's timestamp that a resumed page may have to skip (then it reads all).
CURSOR_SLACK = 100


@dataclass(frozen=True)
class Lookup:
    """A planned request: what to merge (read in a transaction) and what was asked."""

    inputs: list[DatasetInput]  # every profile-enabled dataset's files (what a field path is checked against)
    spec: MergePolicySpec
    identity: tuple[str, str]
    fields: tuple[str, ...] | None
    events: bool
    query: EntityQuery | None  # the GET's query (an events page repeats it for the next one)
    deletions: profile_deletions.Deletions = profile_deletions.NONE  # deleted profiles, left out
    # The rows of the identity's component (the profile store), or None: merge `inputs` whole.
    selected: list[DatasetInput] | None = None

    @property
    def merged(self) -> list[DatasetInput]:
        """What the engine reads for this lookup."""
        return self.inputs if self.selected is None else self.selected


# ---- planning (the request is typed: schemas/entities.py) -----------------------------------------------

def plan(s: Session, lake: Lake, t: Tenant, query: EntityQuery) -> Lookup:
    """Read what the merge of one lookup needs (the policy, the lake's files, deleted profiles)."""
    return _plan(s, lake, t, query.identity, query.fields, query.events, query.mergePolicyId, query)


def _plan(s: Session, lake: Lake, t: Tenant, identity: tuple[str, str], fields: tuple[str, ...] | None,
          events: bool, policy_id: str | None, query: EntityQuery | None = None) -> Lookup:
    _, _, body = merge_policies.resolve_lookup_version(s, t, policy_id or None)
    inputs = profile_inputs.dataset_inputs(s, lake, t)
    return Lookup(inputs, policy_spec(body), identity, fields, events, query, profile_deletions.load(s, t),
                  profile_store.lookup_inputs(s, lake, t, inputs, identity))


def plan_many(s: Session, lake: Lake, t: Tenant, body: EntitiesRequest) -> list[Lookup]:
    """POST /access/entities (profiles of several identities): one planned lookup per identity."""
    _, _, policy = merge_policies.resolve_lookup_version(s, t, body.mergePolicyId or None)
    inputs = profile_inputs.dataset_inputs(s, lake, t)
    deletions = profile_deletions.load(s, t)
    unindexed = profile_store.unindexed_files(s, lake, t)  # read once for every identity asked
    return [Lookup(inputs, policy_spec(policy), pair, body.fields, False, None, deletions,
                   profile_store.lookup_inputs(s, lake, t, inputs, pair, unindexed))
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
    ns, ident = lookup.identity
    try:
        result = merge_profiles(lookup.merged, lookup.spec, ExportQuery(identity=lookup.identity,
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
            table: pa.Table = profile_events(lookup.merged, lookup.spec, lookup.identity, start_ms=start_ms,
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
