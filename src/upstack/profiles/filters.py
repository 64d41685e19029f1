"""Segment membership keys of merged profiles and the export filters (segments, qualification time, ingest)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .load import Path
from .model import ExportQuery, SegmentFilter
from .project import lists_from_long
from .unify import cast_to, to_epoch_ms

SEGMENTS = "segmentMembership"
SEGMENT_KEY = pa.struct(
    [("ns", pa.string()), ("id", pa.string()), ("status", pa.string()), ("last_qualification_ms", pa.int64())]
)


def _segment_columns(leaves: dict[Path, pa.Array]) -> dict[tuple[str, str], tuple[pa.Array, pa.Array | None]]:
    """(namespace, segment id) -> (merged status, merged lastQualificationTime as epoch ms)."""
    out = {}
    for path, arr in leaves.items():
        if len(path) == 4 and path[0] == SEGMENTS and path[3] == "status":
            lqt = leaves.get((SEGMENTS, path[1], path[2], "lastQualificationTime"))
            out[(path[1], path[2])] = (cast_to(arr, pa.string()), None if lqt is None else to_epoch_ms(lqt))
    return dict(sorted(out.items()))


def segment_keys(leaves: dict[Path, pa.Array], n: int) -> pa.Array:
    """list<struct<ns, id, status, last_qualification_ms>> per profile, sorted by (ns, id)."""
    parents, items = [], []
    for (ns, seg), (status, lqt) in _segment_columns(leaves).items():
        rows = np.flatnonzero(pc.is_valid(status).to_numpy(zero_copy_only=False))
        if len(rows) == 0:
            continue
        take = pa.array(rows)
        qual = lqt.take(take) if lqt is not None else pa.nulls(len(rows), pa.int64())
        items.append(
            pa.StructArray.from_arrays(
                [
                    pa.repeat(pa.scalar(ns), len(rows)),
                    pa.repeat(pa.scalar(seg), len(rows)),
                    status.take(take),
                    qual,
                ],
                fields=list(SEGMENT_KEY),
            )
        )
        parents.append(rows)
    if not items:
        return lists_from_long(
            np.zeros(0, dtype=np.int64), pa.array([], SEGMENT_KEY), n, null_when_empty=False
        )
    parent = np.concatenate(parents)
    order = np.argsort(parent, kind="stable")  # stable keeps the (ns, id) order inside each profile
    values = pa.concat_arrays(items).take(pa.array(order))
    return lists_from_long(parent[order], values, n, null_when_empty=False)


def _in_range(ms: pa.Array | None, start: int | None, end: int | None, n: int) -> np.ndarray:
    if start is None and end is None:
        return np.ones(n, dtype=bool)
    if ms is None:
        return np.zeros(n, dtype=bool)
    ok = pc.is_valid(ms)
    if start is not None:
        ok = pc.and_(ok, pc.greater_equal(ms, start))
    if end is not None:
        ok = pc.and_(ok, pc.less_equal(ms, end))
    return np.asarray(pc.fill_null(ok, False).to_numpy(zero_copy_only=False), dtype=bool)


def segment_mask(leaves: dict[Path, pa.Array], n: int, query: ExportQuery) -> np.ndarray:
    """Profiles qualifying for at least one requested segment (status and, if given, qualification time)."""
    if not query.segments:
        return np.ones(n, dtype=bool)
    columns = _segment_columns(leaves)
    keep = np.zeros(n, dtype=bool)
    for seg in query.segments:
        hit = columns.get((seg.segment_ns, seg.segment_id))
        if hit is None:
            continue
        status, lqt = hit
        ok = pc.fill_null(pc.is_in(status, value_set=pa.array(list(seg.statuses), pa.string())), False)
        keep |= np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool) & _in_range(
            lqt, query.segment_qualification_start_ms, query.segment_qualification_end_ms, n
        )
    return keep


def ingest_mask(last_modified_ms: np.ndarray, query: ExportQuery) -> np.ndarray:
    if query.from_ingest_ms is None:
        return np.ones(len(last_modified_ms), dtype=bool)
    return last_modified_ms >= query.from_ingest_ms


def split_mask(segment_keys_col: pa.Array, seg: SegmentFilter) -> np.ndarray:
    """Rows whose segment_keys contain `seg` with one of its statuses."""
    n = len(segment_keys_col)
    keys = pc.list_flatten(segment_keys_col)
    parent = np.asarray(
        pc.list_parent_indices(segment_keys_col).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    if len(keys) == 0:
        return np.zeros(n, dtype=bool)
    ns, ident, status = (keys.field(i) for i in range(3))
    hit = pc.and_(
        pc.and_(pc.equal(ns, seg.segment_ns), pc.equal(ident, seg.segment_id)),
        pc.is_in(status, value_set=pa.array(list(seg.statuses), pa.string())),
    )
    hit_np = np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
    keep = np.zeros(n, dtype=bool)
    keep[parent[hit_np]] = True
    return keep
