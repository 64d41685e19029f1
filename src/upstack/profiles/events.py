"""Attach experience events to profiles: ingest-time window, projection, per-profile ordered eventList."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .load import Records
from .merge import record_order_keys
from .project import lists_from_long, unflatten
from .sorting import lexsort

EVENT_ID = ("_id",)


def _id_rank(events: Records) -> np.ndarray:
    ids = events.leaves.get(EVENT_ID)
    if ids is None or events.n == 0:
        return np.zeros(events.n, dtype=np.int64)
    return np.asarray(pc.rank(ids, sort_keys="ascending", tiebreaker="dense"), dtype=np.int64)


def event_order(events: Records, profile: np.ndarray, *, descending: bool = False) -> np.ndarray:
    """Event indices sorted by (profile, timestamp, _id), record order breaking the remaining ties."""
    time_ms = -events.time_ms if descending else events.time_ms
    id_rank = -_id_rank(events) if descending else _id_rank(events)
    return lexsort((*record_order_keys(events), id_rank, time_ms, profile))


def whole(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def event_structs(events: Records, idx: np.ndarray) -> pa.Array:
    """One struct per selected event, rebuilt from its projected leaves."""
    take = pa.array(idx, pa.int64())
    columns = unflatten({p: whole(a.take(take)) for p, a in events.leaves.items()}, len(idx))
    if not columns:
        return pa.array([{}] * len(idx), pa.struct([])) if len(idx) else pa.array([], pa.struct([]))
    return pa.StructArray.from_arrays([c for _, c in columns], names=[name for name, _ in columns])


def in_window(values: np.ndarray, start: int | None, end: int | None) -> np.ndarray:
    ok = np.ones(len(values), dtype=bool)
    if start is not None:
        ok &= values >= start
    if end is not None:
        ok &= values <= end
    return ok


def event_list(
    events: Records,
    profile: np.ndarray,
    n: int,
    from_ingest_ms: int | None,
    to_ingest_ms: int | None,
    check: Callable[[], None],
) -> pa.Array:
    """eventList per output row: events whose ingestTime is in [from, to], ordered by timestamp then _id.

    `profile` gives each event's output row (-1: not exported)."""
    chosen = (profile >= 0) & in_window(events.ingest_ms, from_ingest_ms, to_ingest_ms)
    order = event_order(events, np.where(chosen, profile, -1))
    order = order[chosen[order]]
    check()
    values = event_structs(events, order)
    check()
    return lists_from_long(profile[order], values, n, null_when_empty=False)


def events_table(events: Records, idx: np.ndarray) -> pa.Table:
    """Profile-access rows for the given (already ordered) events: entity_id, timestamp_ms, entity."""
    ids = events.leaves.get(EVENT_ID)
    take = pa.array(idx, pa.int64())
    time_ms = events.time_ms[idx]
    return pa.table(
        {
            "entity_id": whole(ids.take(take)) if ids is not None else pa.nulls(len(idx), pa.string()),
            "timestamp_ms": pa.array(time_ms, pa.int64(), mask=time_ms == -(2**62)),
            "entity": event_structs(events, idx),
        }
    )
