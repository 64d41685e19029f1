"""Deleted profiles (`DELETE /data/core/ups/access/entities`, CONTRACT §9).

The platform removes the profile from the profile store and keeps the data lake's records; fragments ingested
later make a profile again. upstack keeps the lake as it is and records the deletion (tenant, identity, time);
every path that serves profiles (exports and lookups) drops a merged profile when

- under identity graph `none`: its identity (the primary identity its fragments share) was deleted,
- under `pdg`: any identity of its graph was deleted (the whole graph goes),

and its newest fragment was ingested no later than that deletion. Without deletions (the common case) nothing
is computed; with them, one pass over the part's identity map.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from upstack import identitymap
from upstack.profiles import MergeResultPart
from upstack.services.catalog import now_ms
from upstack.storage.models import ProfileDeletion
from upstack.tenant import Tenant

SEP = "\x1f"  # between namespace and id in the lookup keys (a namespace code never holds it)


@dataclasses.dataclass(frozen=True)
class Deletions:
    """The tenant's deleted identities, `namespace SEP id` -> deletion time (epoch ms)."""

    at: dict[str, int]

    def __bool__(self) -> bool:
        return bool(self.at)


NONE = Deletions({})


def load(s: Session, t: Tenant) -> Deletions:
    rows = s.execute(select(ProfileDeletion.namespace, ProfileDeletion.identity, func.max(ProfileDeletion.deleted_ms))
                     .where(ProfileDeletion.org == t.org, ProfileDeletion.sandbox == t.sandbox)
                     .group_by(ProfileDeletion.namespace, ProfileDeletion.identity))
    return Deletions({f"{ns}{SEP}{ident}": at for ns, ident, at in rows})


def record(s: Session, t: Tenant, namespace: str, identity: str) -> int:
    at = now_ms()
    s.add(ProfileDeletion(org=t.org, sandbox=t.sandbox, namespace=namespace, identity=identity, deleted_ms=at))
    s.flush()
    return at


def deleted_mask(deletions: Deletions, graph: str, profiles: pa.Table, meta: pa.Table) -> np.ndarray | None:
    """Which rows of a merge result are deleted profiles; None when none is (nothing to drop)."""
    n = profiles.num_rows
    if not deletions or n == 0:
        return None
    keys = pa.array(list(deletions.at), pa.string())
    times = np.array(list(deletions.at.values()), dtype=np.int64)
    last_modified = np.asarray(pc.fill_null(meta.column("last_modified_ms"), -1).to_numpy(), dtype=np.int64)
    if graph == "pdg" and "identityMap" in profiles.column_names:
        flat_ns, ids, flat_row = _identities(profiles.column("identityMap").combine_chunks())
        flat_keys = pc.binary_join_element_wise(flat_ns, pc.cast(ids, pa.string()), SEP)
        which = np.asarray(pc.fill_null(pc.index_in(flat_keys, value_set=keys), -1).to_numpy(), dtype=np.int64)
        hit = which >= 0
        newest = np.full(n, -1, dtype=np.int64)
        np.maximum.at(newest, flat_row[hit], times[which[hit]])
    else:
        row_keys = pc.binary_join_element_wise(pc.cast(meta.column("entity_ns"), pa.string()),
                                               pc.cast(meta.column("entity_id"), pa.string()), SEP)
        which = np.asarray(pc.fill_null(pc.index_in(row_keys, value_set=keys), -1).to_numpy(), dtype=np.int64)
        newest = np.where(which >= 0, times[np.maximum(which, 0)], -1)
    mask = (newest >= 0) & (last_modified <= newest)
    return mask if mask.any() else None


def _identities(imap: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """One entry per identity of a column of identity maps (either layout): its namespace, its id, its row."""
    entry_row, keys, lists = identitymap.entries(imap)
    entry, ids, _auth, _primary = identitymap.item_fields(lists)
    return keys.take(pa.array(entry, pa.int64())), ids, entry_row[entry]


def drop_deleted(part: MergeResultPart, deletions: Deletions, graph: str) -> MergeResultPart:
    """`part` without its deleted profiles (the same object when it has none); its namespace counters follow."""
    mask = deleted_mask(deletions, graph, part.profiles, part.meta)
    if mask is None:
        return part
    keep = pa.array(~mask)
    by_namespace = dict(part.by_namespace)
    dropped = part.profiles.column("identityMap").filter(pa.array(mask)).combine_chunks()
    ns, _, rows = _identities(dropped)
    for name, _row in set(zip(ns.to_pylist(), rows.tolist(), strict=True)):  # a row counts once per namespace
        if name in by_namespace:
            by_namespace[name] -= 1
    return dataclasses.replace(part, profiles=part.profiles.filter(keep), meta=part.meta.filter(keep),
                               by_namespace={k: v for k, v in by_namespace.items() if v > 0})


def hides(deletions: Deletions, graph: str, identity: tuple[str, str], entity: dict, last_modified_ms: int | None
          ) -> bool:
    """`deleted_mask` for one looked-up profile (a merged row): its looked-up identity under `none`, any
    identity of its `identityMap` under pdg."""
    if not deletions:
        return False
    if graph == "pdg":
        imap = entity.get("identityMap") or {}
        pairs = imap.items() if isinstance(imap, dict) else imap
        keys = [f"{ns}{SEP}{i.get('id')}" for ns, ids in pairs for i in ids or () if isinstance(i, dict)]
    else:
        keys = [f"{identity[0]}{SEP}{identity[1]}"]
    newest = max((deletions.at[k] for k in keys if k in deletions.at), default=None)
    return newest is not None and (last_modified_ms if last_modified_ms is not None else -1) <= newest
