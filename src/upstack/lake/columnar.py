"""The row rules applied column by column to Parquet input, with pyarrow.compute and numpy, never row by row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from upstack.lake.errors import RefusedFile, UnreadableFile
from upstack.lake.rows import (
    AUTHENTICATED_STATES,
    EVENT_TIMESTAMP,
    ID_MISSING,
    IDENTITY_INVALID,
    IDENTITY_ITEM,
    IDENTITY_MAP,
    IDENTITYMAP_MISSING,
    MAX_IDENTITIES,
    SYSTEM_COLUMN,
    TIMESTAMP_INVALID,
    TIMESTAMP_MISSING,
    TOO_DEEP,
    TOO_MANY_IDENTITIES,
    TOO_WIDE,
    RowError,
    identity_map_type,
    record_text,
)
from upstack.lake.shape import Bounds, Violation, check_schema

_FILE_CODES = {TOO_DEEP: "FILE-TOO-DEEP", TOO_WIDE: "FILE-TOO-WIDE"}
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


class _Verdicts:
    """The first broken rule of every row; later rules never overwrite an earlier verdict."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int16)  # 0 = row accepted so far
        self.rules: list[tuple[str, Callable[[int], str]]] = [("", lambda i: "")]

    def flag(self, bad: np.ndarray | bool, code: str, message: str | Callable[[int], str]) -> None:
        fresh = np.asarray(bad, dtype=bool) & (self.code == 0)
        if fresh.any():
            self.rules.append((code, message if callable(message) else (lambda _i, m=message: m)))
            self.code[fresh] = len(self.rules) - 1

    def errors(self, table: pa.Table, file_name: str) -> list[RowError]:
        bad = np.flatnonzero(self.code)
        records = table.take(pa.array(bad, pa.int64())).to_pylist() if len(bad) else []
        out = []
        for row, record in zip(bad.tolist(), records, strict=True):
            code, message = self.rules[self.code[row]]
            out.append(RowError(file_name, row, code, message(row), record_text(record)))
        return out


def convert_parquet(
    path: Path, kind: str, file_name: str, bounds: Bounds = Bounds()
) -> tuple[pa.Table | None, int, list[RowError]]:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFile(f"{file_name} is not a readable Parquet file: {exc}") from None
    # Every row has the file's schema: one out of bounds refuses the file before any data is read.
    try:
        check_schema(schema, bounds)
    except Violation as bad:
        raise RefusedFile(_FILE_CODES[bad.code], bad.message) from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFile(f"{file_name} is not a readable Parquet file: {exc}") from None
    read = table.num_rows
    if SYSTEM_COLUMN in table.column_names:  # ours to write, never the client's
        table = table.drop_columns([SYSTEM_COLUMN])
    if read == 0:
        return None, 0, []
    verdicts = _Verdicts(read)
    original = table  # row errors quote the record as the client sent it, not our normalised form
    if kind == "event":
        _check_event_id(table, verdicts)
        table = _check_event_timestamp(table, verdicts)
    table = _check_identity_map(table, verdicts)
    failed = verdicts.errors(original, file_name)
    if failed:
        table = table.filter(pa.array(verdicts.code == 0))
    return (table if table.num_rows else None), read, failed


def _column(table: pa.Table, name: str) -> pa.Array | None:
    at = table.schema.get_field_index(name)  # a hash lookup; `name in table.column_names` builds the list
    if at < 0:
        return None
    column = table.column(at)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _valid(arr: pa.Array) -> np.ndarray:
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


# -- events ------------------------------------------------------------------------------------------


def _check_event_id(table: pa.Table, verdicts: _Verdicts) -> None:
    ids = _column(table, "_id")
    message = "an event needs '_id', a non-empty string"
    if ids is None or not _is_string(ids.type):
        verdicts.flag(True, ID_MISSING, message)
        return
    present = pc.fill_null(pc.greater(pc.utf8_length(ids), 0), False)
    verdicts.flag(~present.to_numpy(zero_copy_only=False), ID_MISSING, message)


def _check_event_timestamp(table: pa.Table, verdicts: _Verdicts) -> pa.Table:
    stamps = _column(table, "timestamp")
    if stamps is None:
        verdicts.flag(True, TIMESTAMP_MISSING, "an event needs 'timestamp' (RFC 3339 date-time)")
        return table
    verdicts.flag(~_valid(stamps), TIMESTAMP_MISSING, "an event needs 'timestamp' (RFC 3339 date-time)")
    t = stamps.type
    if pa.types.is_timestamp(t):
        # A zone-less Parquet timestamp is taken as UTC, as Spark and pandas write them.
        as_ms = pc.cast(stamps, pa.timestamp("ms", tz=t.tz or "UTC"), safe=False)
        typed = pc.cast(as_ms, EVENT_TIMESTAMP)
    elif _is_string(t):
        typed = _parse_rfc3339(stamps, verdicts)
    else:
        verdicts.flag(True, TIMESTAMP_INVALID, f"'timestamp' must be a date-time, this file stores it as {t}")
        typed = pa.nulls(len(stamps), EVENT_TIMESTAMP)
    return table.set_column(table.schema.get_field_index("timestamp"), "timestamp", typed)


def _parse_rfc3339(stamps: pa.Array, verdicts: _Verdicts) -> pa.Array:
    upper = pc.utf8_upper(stamps)
    well_formed = pc.fill_null(pc.match_substring_regex(upper, _RFC3339), False)
    # Arrow refuses more fraction digits than the target unit holds; milliseconds are all we keep.
    trimmed = pc.replace_substring_regex(upper, r"(\.\d{3})\d+", r"\1")
    candidates = pc.if_else(well_formed, trimmed, pa.scalar(None, trimmed.type))
    try:
        typed = pc.cast(candidates, EVENT_TIMESTAMP)
    except pa.ArrowInvalid:
        # Well formed yet impossible (February 30th, second 60): only now go value by value.
        typed = pa.array([_python_ms(s) for s in candidates.to_pylist()], pa.int64()).cast(EVENT_TIMESTAMP)
    invalid = _valid(stamps) & ~_valid(typed)
    verdicts.flag(invalid, TIMESTAMP_INVALID, "'timestamp' is not an RFC 3339 date-time")
    return typed


def _python_ms(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


# -- identityMap -------------------------------------------------------------------------------------


def _check_identity_map(table: pa.Table, verdicts: _Verdicts) -> pa.Table:
    column = _column(table, IDENTITY_MAP)
    if column is None:
        verdicts.flag(True, IDENTITYMAP_MISSING, "the record has no identityMap")
        return table
    n = len(column)
    present = _valid(column)
    verdicts.flag(~present, IDENTITYMAP_MISSING, "the record has no identityMap")
    if pa.types.is_map(column.type):
        namespaces = _pivot_map(column, present, verdicts)
    elif pa.types.is_struct(column.type):
        namespaces = {column.type.field(i).name: column.field(i) for i in range(column.type.num_fields)}
    else:
        verdicts.flag(
            present, IDENTITY_INVALID, f"identityMap must map namespaces to identities, not {column.type}"
        )
        namespaces = {}
    counts = np.zeros(n, dtype=np.int64)
    normal = {}
    for namespace, lists in namespaces.items():
        if not namespace:
            verdicts.flag(
                present & _valid(lists), IDENTITY_INVALID, "identityMap has an empty namespace name"
            )
            continue
        normal[namespace], per_row = _check_namespace(namespace, lists, present, verdicts)
        counts += per_row
    verdicts.flag(present & (counts == 0), IDENTITYMAP_MISSING, "identityMap holds no identity")
    verdicts.flag(
        counts > MAX_IDENTITIES,
        TOO_MANY_IDENTITIES,
        lambda i: f"the record has {counts[i]} identities, at most {MAX_IDENTITIES} are allowed",
    )
    if normal:
        rebuilt = pa.StructArray.from_arrays(
            list(normal.values()), fields=list(identity_map_type(list(normal)))
        )
    else:
        rebuilt = pa.nulls(n, identity_map_type([]))  # every row is rejected; any type will do
    return table.set_column(table.schema.get_field_index(IDENTITY_MAP), IDENTITY_MAP, rebuilt)


def _list_parts(lists: pa.Array) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """(offsets starting at 0, the child values they index, the row of each child value)."""
    offsets = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    values = lists.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets = offsets - offsets[0]
    parents = np.repeat(np.arange(len(lists)), np.diff(offsets))
    return offsets, values, parents


def _pivot_map(column: pa.MapArray, present: np.ndarray, verdicts: _Verdicts) -> dict[str, pa.Array]:
    """Spark and AEP write identityMap as map<namespace, list>; turn it into one list column per namespace."""
    _offsets, entries, parents = _list_parts(column)
    keys = entries.field(0)
    items = entries.field(1)
    live = present[parents] if len(parents) else np.zeros(0, dtype=bool)
    namespaces: dict[str, pa.Array] = {}
    n = len(column)
    for namespace in pc.unique(keys.filter(pa.array(live))).to_pylist():
        if namespace is None:
            continue
        same = pc.fill_null(pc.equal(keys, namespace), False).to_numpy(zero_copy_only=False)
        at = np.flatnonzero(live & same)
        rows = parents[at]
        repeated = np.bincount(rows, minlength=n) > 1
        verdicts.flag(repeated, IDENTITY_INVALID, f"identityMap names namespace {namespace} twice")
        pick = np.full(n, -1, dtype=np.int64)
        pick[rows] = at
        namespaces[namespace] = items.take(pa.array(pick, mask=pick < 0))
    return namespaces


def _check_namespace(
    namespace: str, lists: pa.Array, present: np.ndarray, verdicts: _Verdicts
) -> tuple[pa.Array, np.ndarray]:
    """Validate one namespace's identity lists; return them with the fixed item type and per-row counts."""
    n = len(lists)
    if pa.types.is_null(lists.type):
        return pa.nulls(n, pa.list_(IDENTITY_ITEM)), np.zeros(n, dtype=np.int64)
    if not (pa.types.is_list(lists.type) or pa.types.is_large_list(lists.type)):
        verdicts.flag(present & _valid(lists), IDENTITY_INVALID, f"identityMap.{namespace} must be a list")
        return pa.nulls(n, pa.list_(IDENTITY_ITEM)), np.zeros(n, dtype=np.int64)
    live = present & _valid(lists)
    offsets, items, parents = _list_parts(lists)
    counts = np.where(live, np.diff(offsets), 0)
    item_type = items.type
    if pa.types.is_struct(item_type):
        ids, ok = _identity_ids(items)
        primary, ok_primary = _optional_field(items, "primary", pa.bool_())
        state, ok_state = _optional_field(items, "authenticatedState", pa.string())
        ok &= _valid(items)
        for extra in (ok_primary, ok_state):
            if extra is not None:
                ok &= extra
        if state is not None:
            known = pc.is_in(state, value_set=pa.array(AUTHENTICATED_STATES))
            ok &= pc.or_kleene(pc.is_null(state), known).to_numpy(zero_copy_only=False)
    else:
        ids = primary = state = None
        ok = np.zeros(len(items), dtype=bool)
    bad_rows = np.bincount(parents[~ok], minlength=n).astype(bool) if len(items) else np.zeros(n, dtype=bool)
    verdicts.flag(
        live & bad_rows,
        IDENTITY_INVALID,
        f"identityMap.{namespace} holds an identity without a non-empty string 'id', or with a bad "
        f"'primary' or 'authenticatedState' (one of {', '.join(AUTHENTICATED_STATES)})",
    )
    m = len(items)
    child = pa.StructArray.from_arrays(
        [
            ids if ids is not None else pa.nulls(m, pa.string()),
            primary if primary is not None else pa.nulls(m, pa.bool_()),
            state if state is not None else pa.nulls(m, pa.string()),
        ],
        fields=list(IDENTITY_ITEM),
    )
    normal = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), child, mask=pa.array(~live))
    return normal, counts


def _identity_ids(items: pa.StructArray) -> tuple[pa.Array, np.ndarray]:
    t = items.type
    if t.get_field_index("id") < 0 or not _is_string(t.field("id").type):
        return pa.nulls(len(items), pa.string()), np.zeros(len(items), dtype=bool)
    ids = items.field("id").cast(pa.string())
    ok = pc.fill_null(pc.greater(pc.utf8_length(ids), 0), False).to_numpy(zero_copy_only=False)
    return ids, ok


def _optional_field(
    items: pa.StructArray, name: str, target: pa.DataType
) -> tuple[pa.Array | None, np.ndarray | None]:
    """The item field cast to its XDM type; items holding a value of another type are marked not ok."""
    t = items.type
    if t.get_field_index(name) < 0:
        return None, None
    values = items.field(name)
    if values.type == target or pa.types.is_null(values.type):
        return values.cast(target), None
    if target == pa.string() and _is_string(values.type):
        return values.cast(target), None
    return pa.nulls(len(items), target), ~_valid(values)
