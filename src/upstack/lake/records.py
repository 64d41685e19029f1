"""Convert one uploaded JSON or Parquet file into a validated Arrow table and its row errors (CONTRACT section 4)."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from upstack.identitymap import with_map_layout
from upstack.lake import columnar, jsonlines
from upstack.lake.errors import UnreadableFile
from upstack.lake.inference import infer_table
from upstack.lake.parquet import parquet_safe
from upstack.lake.rows import (
    AUTHENTICATED_STATES,
    EVENT_TIMESTAMP,
    ID_MISSING,
    IDENTITY_INVALID,
    IDENTITY_MAP,
    IDENTITYMAP_MISSING,
    JSON_INVALID,
    MAX_IDENTITIES,
    NOT_OBJECT,
    SYSTEM_COLUMN,
    TIMESTAMP_INVALID,
    TIMESTAMP_MISSING,
    TOO_DEEP,
    TOO_MANY_IDENTITIES,
    TYPE_CONFLICT,
    RowError,
    identity_map_type,
    record_text,
    with_system_column,
)
from upstack.lake.shape import Bounds, Violation, check_record, unchecked_length, within

Format = Literal["json", "parquet"]
Kind = Literal["profile", "event"]

# How JSON lines are read: "auto" column by column where `jsonlines` can promise the row path's result, else
# record by record; tests force "rows" (the reference) or "columns" (NotColumnar escapes instead of falling back).
JSON_LINES_PATH: Literal["auto", "rows", "columns"] = "auto"

# RFC 3339 section 5.6 (with the lower-case and space separators its notes allow).
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_AUTH_STATES = frozenset(AUTHENTICATED_STATES)
# Formats that are certainly not JSON text: reject the file instead of reporting every line.
_BINARY_MAGIC = {b"PAR1": "a Parquet file", b"\x1f\x8b": "a gzip file", b"PK\x03\x04": "a zip file"}


@dataclass(slots=True)
class Converted:
    """The accepted rows of one file (None when no row was accepted), how many records it held, the rejects."""

    table: pa.Table | None
    read: int
    failed: list[RowError] = field(default_factory=list)


class _Reject(Exception):
    """Internal: one record breaks a row rule."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message


def convert_file(
    path: Path | str,
    fmt: Format,
    multiline: bool,
    kind: Kind,
    *,
    batch_id: str,
    ingest_time_ms: int,
    row_offset: int,
    file_name: str,
    bounds: Bounds = Bounds(),
) -> Converted:
    """Read one uploaded file and split it into accepted rows and row errors.

    Parquet is checked column by column (`upstack.lake.columnar`), and so are JSON lines whenever
    `upstack.lake.jsonlines` can read them exactly as the row path would; the other JSON files (multi-line
    JSON, and any file that path refuses) are parsed and checked record by record in Python. Accepted rows
    get a normalised ``identityMap`` (``map<string, list<struct<id, authenticatedState, primary>>>``), events a
    ``timestamp[ms, UTC]`` timestamp, and all the system column ``_acp_system_metadata``.
    ``row_offset`` is the number of rows the batch accepted before this file, so ``rowNumber`` runs
    on across the files of a batch. ``bounds`` are the deepest and widest record accepted (the caller's
    settings): a JSON record beyond them is a row error, a Parquet file whose schema is beyond them is
    refused whole (`RefusedFile`), as all its rows have that schema. Raises `UnreadableFile` when the file
    is not in ``fmt`` at all.
    """
    if fmt == "parquet":
        table, read, failed = columnar.convert_parquet(Path(path), kind, file_name, bounds)
    elif fmt == "json":
        table, read, failed = _convert_json(Path(path), multiline, kind, file_name, bounds)
    else:
        raise ValueError(f"unknown input format {fmt!r}")
    if table is None or table.num_rows == 0:
        return Converted(None, read, failed)
    table = with_map_layout(table)  # checked as one list per namespace, stored as AEP's lake does (a map)
    table = with_system_column(table, batch_id=batch_id, ingest_time_ms=ingest_time_ms, row_offset=row_offset)
    return Converted(table, read, failed)


# -- JSON -------------------------------------------------------------------------------------------


def _convert_json(
    path: Path, multiline: bool, kind: Kind, file_name: str, bounds: Bounds
) -> tuple[pa.Table | None, int, list[RowError]]:
    data = path.read_bytes()
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise UnreadableFile(f"{file_name} is {what}, not JSON")
    if b"\x00" in data:
        raise UnreadableFile(f"{file_name} is binary data, not JSON")
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as some Windows tools write
        data = data[3:]
    with _gc_paused():
        return _convert_json_bytes(data, multiline, kind, file_name, bounds)


def _convert_json_bytes(
    data: bytes, multiline: bool, kind: Kind, file_name: str, bounds: Bounds
) -> tuple[pa.Table | None, int, list[RowError]]:
    if not multiline and JSON_LINES_PATH != "rows":
        try:
            return _convert_lines(data, kind == "event", file_name, bounds)
        except jsonlines.NotColumnar:
            if JSON_LINES_PATH == "columns":
                raise
    values, raws = _parse_multiline(data, file_name) if multiline else _parse_lines(data, file_name)

    is_event = kind == "event"
    failed: list[RowError] = []
    accepted: list[dict] = []
    accepted_rows: list[int] = []
    for row, value in enumerate(values):
        if isinstance(value, _Reject):
            failed.append(RowError(file_name, row, value.code, value.message, _raw(raws, values, row)))
            continue
        try:
            accepted.append(_judge(value, None if raws is None else raws[row], is_event, bounds))
        except (_Reject, Violation) as bad:
            failed.append(RowError(file_name, row, bad.code, bad.message, _raw(raws, values, row)))
            continue
        accepted_rows.append(row)
    if not accepted:
        return None, len(values), failed

    try:
        table, conflicts = infer_table(accepted)
    except RecursionError:
        # The inference's helpers recurse once per level: a record some hundred levels deep (orjson parses
        # 1024) exhausts Python's stack. It is far beyond any bound, so the walk below finds it.
        table, conflicts = None, {}
    if table is None or conflicts or not within(table.schema, bounds):
        # Some record may be too deep or too wide (or only their union is wide), or it conflicts because it
        # is: walk each one, then infer again without those that break a bound. Every record's shape is
        # within the schema's, so a file without conflicts whose schema is within bounds needs no walk.
        kept = []
        for position, row in enumerate(accepted_rows):
            try:
                check_record(values[row], bounds)
            except Violation as bad:
                failed.append(RowError(file_name, row, bad.code, bad.message, _raw(raws, values, row)))
                continue
            kept.append(position)
        if len(kept) < len(accepted) or table is None:
            accepted_rows = [accepted_rows[p] for p in kept]
            accepted = [accepted[p] for p in kept]
            if not accepted:
                failed.sort(key=lambda e: e.row)
                return None, len(values), failed
            table, conflicts = infer_table(accepted)
    for position, message in conflicts.items():
        row = accepted_rows[position]
        failed.append(RowError(file_name, row, TYPE_CONFLICT, message, _raw(raws, values, row)))
    failed.sort(key=lambda e: e.row)
    if table.num_rows == 0:
        return None, len(values), failed
    return _typed_system_fields(table, is_event), len(values), failed


def _judge(value: dict, raw: bytes | None, is_event: bool, bounds: Bounds) -> dict:
    """The row rules of one parsed record (raising `_Reject` or `Violation`), its checked copy otherwise.

    A record whose text could hold too many fields is walked before anything else touches it (type inference
    costs ~0.2 ms per field); the others are judged by the file's schema after inference.
    """
    if raw is None or len(raw) > unchecked_length(bounds):
        check_record(value, bounds)
    return _check_record(value, is_event)


def _convert_lines(
    data: bytes, is_event: bool, file_name: str, bounds: Bounds
) -> tuple[pa.Table | None, int, list[RowError]]:
    """JSON lines column by column: `jsonlines.read` types the records as the row path would, and the Parquet
    path's checks (`columnar.check_table`) judge them; the row path's result exactly, at several times its speed.

    The checks say which rows break a rule; each of those is parsed and judged by the row rules (`_judge`), so
    that its error (code, message, quoted text) is the row path's. A rejected record contributes nothing to the
    row path's inferred table, so when there are some the accepted lines are read again on their own. Raises
    `jsonlines.NotColumnar` when the file needs the row path, including when the checks and the row rules
    disagree on a record (that would be a bug in one of them: the row rules win).
    """
    table, lines = jsonlines.read(data, bounds)
    checked, verdicts = columnar.check_table(columnar.without_system_column(table), "event" if is_event else "profile")
    bad = np.flatnonzero(verdicts.code)
    failed = [_row_error(lines.raw(row), row, is_event, file_name, bounds) for row in bad.tolist()]
    if not failed:
        # A field that was always `{}` is null, as the row path leaves it (Parquet stores no empty struct).
        return (parquet_safe(checked) if checked.num_rows else None), len(lines), []
    kept = np.flatnonzero(verdicts.code == 0)
    if not len(kept):
        return None, len(lines), failed
    table, _read, again = _convert_lines(lines.only(kept), is_event, file_name, bounds)
    if again:
        raise jsonlines.NotColumnar("a record accepted among its file's records is rejected on its own")
    return table, len(lines), failed


def _row_error(raw: bytes, row: int, is_event: bool, file_name: str, bounds: Bounds) -> RowError:
    """The row path's error for a record the column checks rejected."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise jsonlines.NotColumnar("pyarrow read a line that orjson refuses") from None
    if not isinstance(value, dict):
        raise jsonlines.NotColumnar("pyarrow read a line that is not one object")
    try:
        _judge(value, raw, is_event, bounds)
    except (_Reject, Violation) as bad:
        return RowError(file_name, row, bad.code, bad.message, record_text(raw))
    raise jsonlines.NotColumnar(f"the column checks reject record {row}, the row rules accept it")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records are parsed.

    Parsing allocates millions of small dicts, lists and strings; each allocation burst triggers
    full collections that scan them all again, which measured at 3-4x the cost of parsing itself.
    Parsed JSON cannot form reference cycles, so nothing is lost by collecting later.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_lines(data: bytes, file_name: str) -> tuple[list[object], list[bytes]]:
    """JSON lines: one record per non-blank line; a bad line is that row's error, not the file's."""
    values: list[object] = []
    raws: list[bytes] = []
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    any_json = False
    any_text_error = False
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        raws.append(line)
        try:
            value = loads(line)
        except decode_error as exc:
            any_text_error = any_text_error or "UTF-8" in str(exc)
            values.append(_Reject(JSON_INVALID, f"not valid JSON: {exc}"))
            continue
        any_json = True
        if isinstance(value, list):
            # A JSON array on one line (what aepp's uploadSmallFile sends without isMultiLineJson):
            # its elements are the records, as Spark's JSON reader (and so AEP) reads them.
            raws.pop()
            for item in value:
                try:
                    raws.append(orjson.dumps(item))
                except orjson.JSONEncodeError:  # orjson writes at most 255 levels; the bound is far below
                    raws.append(b"")
                    values.append(_Reject(TOO_DEEP, "the record nests objects and arrays more than 255 levels deep"))
                    continue
                values.append(item if isinstance(item, dict) else
                              _Reject(NOT_OBJECT, f"a record must be a JSON object, not {_json_kind(item)}"))
            continue
        if not isinstance(value, dict):
            value = _Reject(NOT_OBJECT, f"a record must be a JSON object, not {_json_kind(value)}")
        values.append(value)
    if values and not any_json and any_text_error:
        # Not one line of JSON and not even UTF-8 text: this is some other format, not bad rows.
        raise UnreadableFile(f"{file_name} is not UTF-8 JSON text")
    return values, raws


def _parse_multiline(data: bytes, file_name: str) -> tuple[list[object], None]:
    """Multi-line JSON: the whole file is one object or one array of objects."""
    if not data.strip():
        return [], None
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UnreadableFile(f"{file_name} is not a JSON document: {exc}") from None
    if isinstance(document, dict):
        return [document], None
    if not isinstance(document, list):
        raise UnreadableFile(f"{file_name} must hold a JSON object or an array of objects")
    return [
        v
        if isinstance(v, dict)
        else _Reject(NOT_OBJECT, f"a record must be a JSON object, not {_json_kind(v)}")
        for v in document
    ], None


def _raw(raws: list[bytes] | None, values: list[object], row: int) -> str:
    return record_text(raws[row] if raws is not None else values[row])


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


# -- row rules ---------------------------------------------------------------------------------------


def _check_record(record: dict, is_event: bool) -> dict:
    """Apply the row rules; return a copy with identityMap normalised (and an epoch-ms timestamp).

    The parsed record itself stays as sent, so a later row error (a type conflict) quotes it unchanged.
    """
    stamp_ms = None
    if is_event:
        event_id = record.get("_id")
        if not isinstance(event_id, str) or not event_id:
            raise _Reject(ID_MISSING, "an event needs '_id', a non-empty string")
        stamp = record.get("timestamp")
        if stamp is None:
            raise _Reject(TIMESTAMP_MISSING, "an event needs 'timestamp' (RFC 3339 date-time)")
        stamp_ms = _epoch_ms(stamp)
    identity_map = _normalise_identity_map(record.get(IDENTITY_MAP))
    checked = dict(record)
    checked.pop(SYSTEM_COLUMN, None)  # the system column is ours to write, never the client's
    checked[IDENTITY_MAP] = identity_map
    if is_event:
        checked["timestamp"] = stamp_ms
    return checked


def _epoch_ms(stamp: object) -> int:
    match = _RFC3339.fullmatch(stamp) if isinstance(stamp, str) else None
    if match is None:
        raise _Reject(TIMESTAMP_INVALID, f"'timestamp' is not an RFC 3339 date-time: {stamp!r:.80}")
    date, time, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        # Milliseconds are all we store; fromisoformat takes at most 6 fraction digits.
        moment = datetime.fromisoformat(f"{date}T{time}{(fraction or '')[:4]}{offset}")
    except ValueError:
        raise _Reject(TIMESTAMP_INVALID, f"'timestamp' is not a valid date-time: {stamp!r:.80}") from None
    return (moment - _EPOCH) // _MS


def _normalise_identity_map(value: object) -> dict[str, list[dict]]:
    if value is None:
        raise _Reject(IDENTITYMAP_MISSING, "the record has no identityMap")
    if not isinstance(value, dict):
        raise _Reject(IDENTITY_INVALID, "identityMap must be an object of namespace -> list of identities")
    out: dict[str, list[dict]] = {}
    count = 0
    for namespace, items in value.items():
        if not namespace:
            raise _Reject(IDENTITY_INVALID, "identityMap has an empty namespace name")
        if items is None:
            continue
        if not isinstance(items, list):
            raise _Reject(IDENTITY_INVALID, f"identityMap.{namespace} must be a list of identities")
        normal = []
        for i, item in enumerate(items):
            ident = item.get("id") if isinstance(item, dict) else None
            if not isinstance(ident, str) or not ident:
                raise _Reject(
                    IDENTITY_INVALID, f"identityMap.{namespace}[{i}] needs 'id', a non-empty string"
                )
            primary = item.get("primary")
            if primary is not None and not isinstance(primary, bool):
                raise _Reject(IDENTITY_INVALID, f"identityMap.{namespace}[{i}].primary must be true or false")
            state = item.get("authenticatedState")
            if state is not None and state not in _AUTH_STATES:
                raise _Reject(
                    IDENTITY_INVALID,
                    f"identityMap.{namespace}[{i}].authenticatedState must be one of "
                    f"{', '.join(AUTHENTICATED_STATES)}",
                )
            normal.append({"id": ident, "primary": primary, "authenticatedState": state})
        count += len(normal)
        out[namespace] = normal
    if count == 0:
        raise _Reject(IDENTITYMAP_MISSING, "identityMap holds no identity")
    if count > MAX_IDENTITIES:
        raise _Reject(
            TOO_MANY_IDENTITIES, f"the record has {count} identities, at most {MAX_IDENTITIES} are allowed"
        )
    return out


def _typed_system_fields(table: pa.Table, is_event: bool) -> pa.Table:
    """Give identityMap its fixed item type (inference leaves always-null fields typed null)."""
    at = table.schema.get_field_index(IDENTITY_MAP)
    id_type = identity_map_type([f.name for f in table.schema.field(at).type])
    table = table.set_column(at, IDENTITY_MAP, pc.cast(table.column(at), id_type))
    if is_event:
        at = table.schema.get_field_index("timestamp")
        table = table.set_column(at, "timestamp", pc.cast(table.column(at), EVENT_TIMESTAMP))
    return table
