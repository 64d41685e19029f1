"""Reconcile the Arrow types one attribute path takes across lake files, and parse times, without failing."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STRING = pa.string()
TIMESTAMP = pa.timestamp("us", tz="UTC")

_shared: duckdb.DuckDBPyConnection | None = None
_shared_lock = threading.Lock()


def shared_cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on one process-wide in-memory DuckDB: opening a database costs ~30 ms, a cursor ~0."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = duckdb.connect()
        return _shared.cursor()


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_nested(t) or pa.types.is_dictionary(t)


def common_type(types: Iterable[pa.DataType]) -> pa.DataType:
    """The type every file's array for one path is cast to: numeric promotion, else string.

    Structs and lists are unified member-wise so that, for example, identity items with and without
    `authenticatedState` stay a list of structs rather than degrading to JSON text.
    """
    distinct: list[pa.DataType] = []
    for t in types:
        if pa.types.is_dictionary(t):
            t = t.value_type
        if not pa.types.is_null(t) and t not in distinct:
            distinct.append(t)
    if not distinct:
        return pa.null()
    if len(distinct) == 1:
        t = distinct[0]
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return STRING
        if pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return pa.list_(common_type([t.value_type]))
        return t
    if all(
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) for t in distinct
    ):
        return STRING
    if all(pa.types.is_integer(t) for t in distinct):
        return pa.int64()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in distinct):
        return pa.float64()
    if all(pa.types.is_timestamp(t) for t in distinct):
        return TIMESTAMP
    if all(pa.types.is_struct(t) for t in distinct):
        members: dict[str, list[pa.DataType]] = {}  # first-seen order; a dict, not a list scan per name
        for t in distinct:
            for f in t:
                members.setdefault(f.name, []).append(f.type)
        return pa.struct([pa.field(n, common_type(types)) for n, types in members.items()])
    if all(_is_list(t) for t in distinct):
        return pa.list_(common_type(t.value_type for t in distinct))
    return STRING


def to_json_text(arr: pa.Array) -> pa.Array:
    """Render nested values as JSON text (DuckDB does it columnar); used when types cannot be reconciled."""
    con = shared_cursor()
    try:
        con.register("v", pa.table({"v": arr}))
        return (
            con.sql("SELECT CAST(to_json(v) AS VARCHAR) AS v FROM v")
            .to_arrow_table()
            .column(0)
            .combine_chunks()
        )
    finally:
        con.close()


def _to_string(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_timestamp(t):
        utc = pc.cast(arr, pa.timestamp(t.unit, tz="UTC")) if t.tz is None else arr
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
    if _is_nested(t):
        return to_json_text(arr)
    try:
        return pc.cast(arr, STRING)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return to_json_text(arr)


def cast_to(arr: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """Cast one file's array to the unified type, recursing through structs and lists."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.type == target:
        return arr
    n = len(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(n, target)
    if pa.types.is_struct(target) and pa.types.is_struct(arr.type):
        children = []
        for f in target:
            idx = arr.type.get_field_index(f.name)
            children.append(cast_to(arr.field(idx), f.type) if idx >= 0 else pa.nulls(n, f.type))
        return pa.StructArray.from_arrays(children, fields=list(target), mask=arr.is_null())
    if pa.types.is_list(target) and _is_list(arr.type):
        if not pa.types.is_list(arr.type):
            arr = pc.cast(arr, pa.list_(arr.type.value_type))
        values = cast_to(arr.values, target.value_type)
        return pa.ListArray.from_arrays(arr.offsets, values, type=target, mask=arr.is_null())
    if pa.types.is_string(target):
        return _to_string(arr)
    try:
        return pc.cast(arr, target, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Unreachable for types chosen by common_type; a lost value beats a failed export.
        return pa.nulls(n, target)


def to_epoch_ms(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Epoch milliseconds of timestamps, dates, RFC 3339 strings or epoch-ms integers; null if unparseable."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if pa.types.is_timestamp(t):
        return pc.cast(pc.cast(arr, pa.timestamp("ms", tz=t.tz), safe=False), pa.int64())
    if pa.types.is_date(t):
        return pc.cast(pc.cast(arr, pa.date64()), pa.int64())
    if pa.types.is_integer(t):
        return pc.cast(arr, pa.int64(), safe=False)
    if pa.types.is_floating(t):
        return pc.cast(arr, pa.int64(), safe=False)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        text = pc.cast(arr, STRING)
        try:  # Arrow parses RFC 3339 with an offset or Z in C++, no database needed
            return pc.cast(pc.cast(text, pa.timestamp("ms", tz="UTC")), pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # DuckDB's timestamptz parser also accepts bare dates and times without offset (read as UTC), and
        # TRY_CAST turns garbage into null instead of failing the whole column.
        con = shared_cursor()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("v", pa.table({"v": text}))
            out = (
                con.sql("SELECT epoch_ms(TRY_CAST(v AS TIMESTAMPTZ)) AS v FROM v").to_arrow_table().column(0)
            )
            return pc.cast(out.combine_chunks(), pa.int64())
        finally:
            con.close()
    return pa.nulls(len(arr), pa.int64())


def ms_to_numpy(arr: pa.Array, fill: int) -> np.ndarray:
    """Epoch-ms array as int64 numpy with nulls replaced by `fill`."""
    return np.asarray(pc.fill_null(arr, fill).to_numpy(zero_copy_only=False), dtype=np.int64)
