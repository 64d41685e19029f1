"""JSON lines read column by column: pyarrow's C++ JSON reader, typed exactly as the row path types records.

The row path (`records.py`) parses every line into Python objects and infers one Arrow table from them
(`inference.infer_table`): ~15 us a record. `read` gives the same table from `pyarrow.json.read_json`, so JSON
lines can take the Parquet path's column checks (`columnar.check_table`). Same means the same Arrow schema
(types, field order at every level) and values, so the Parquet written is the same. `read` only answers when it
can promise that; otherwise it raises `NotColumnar` and the caller takes the row path for the whole file, which
stays the reference for every per-row error and for everything this module does not express.

How the types are made the same:
- pyarrow turns ISO-looking strings into timestamps, the row path keeps strings. The schema is inferred on the
  file's first block (whole lines, read alone and single-threaded, so fields come in first-appearance order as
  `pa.array` gives them), its temporal types are turned back into strings, and the whole file is read with that
  explicit schema. When the file holds nothing the sample did not (the usual case: one schema per file), that
  is one multi-threaded read. Otherwise (a later line adds a field or widens a type) the file is read again
  single-threaded, because where a multi-threaded read puts a field first seen in a later block depends on
  which block finished first; if that read found temporal types, once more with its own schema as strings.
- pyarrow 26's inference loses the leading nulls of a list whose item type it learns after them (`[null, 1]`)
  and returns an invalid array: an inferred table that does not validate is read again with its schema
  given, which reads such lists right. A list of nulls only (`[null, null]`) comes out invalid either way,
  so the table returned must validate (`validate(full=True)`), else the file takes the row path.
- pyarrow reads an integer beyond 64 bits, NaN and Infinity as doubles; the row path refuses them (a type
  conflict, invalid JSON), and `pa.array` refuses to mix an integer beyond 2^53 with floats. Any double leaf
  that is not finite, or integral and at least 2^53, sends the file to the row path.
- pyarrow refuses a line holding two objects, duplicate keys or a type conflict, and the row path reports
  those per row: a refused read sends the file to the row path. Its row count must equal the row path's
  (non-blank lines), and the file must be UTF-8, as orjson requires of every line.

Bounds: every line must be at most `unchecked_length(bounds)` bytes long (so no record can be too wide, and a
record's width is bounded by the schema's, as in the row path) and at most half a block (`BLOCK_BYTES`), and
must nest at most `bounds.depth` levels, measured on the text before pyarrow sees it: pyarrow's time grows
with the square of the nesting (a 15,000-level line takes it 29 s), orjson stops at 1,024, so a deep record
is the row path's to report. The schema read must be within `bounds` (`shape.within`): then no record is
beyond them, as in the row path.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from upstack.lake.rows import IDENTITY_MAP
from upstack.lake.shape import Bounds, unchecked_length, within

# pyarrow parses a file in blocks of this many bytes (a thread each); a line may not straddle more than two.
BLOCK_BYTES = 1 << 20
_LONGEST_LINE = BLOCK_BYTES // 2
_EXACT_INTEGERS = 2.0**53  # doubles at and beyond this are not all integers: pa.array refuses to mix them
_OPENERS_AND_NEWLINES = bytes(b for b in range(256) if b not in b"{[\n")
_STRUCTURE = bytes(b for b in range(256) if b not in b'"{}[]\n')
_STRING = re.compile(rb'"[^"\n]*"')
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[list(b"{[")] = 1
_DEPTH_STEP[list(b"}]")] = -1
# How pyarrow starts the message of a line it cannot parse or whose kind of value changed; it says "Failed to
# convert" when only an explicit type is too narrow. Only a speed-up: a wrong guess sends a file to the row path.
_PARSE_ERROR = "JSON parse error"
_READ_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, UnicodeDecodeError)


class NotColumnar(Exception):
    """The file needs the row path; the message says why (tests and logs read it)."""


@dataclass(frozen=True, slots=True)
class Lines:
    """Where each record's line is in the file, for quoting a rejected record as sent."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def raw(self, row: int) -> bytes:
        return self.data[self.starts[row] : self.ends[row]]

    def only(self, rows: np.ndarray) -> bytes:
        """The lines of `rows` as a JSON lines file of their own."""
        return b"\n".join(self.raw(row) for row in rows.tolist())


def read(data: bytes, bounds: Bounds) -> tuple[pa.Table, Lines]:
    """The records of JSON lines `data` as the row path's `infer_table` would type them, and their lines.

    Identity namespaces come in the row path's order too (`_identity_order`). Raises `NotColumnar` when the
    table could differ from the row path's or the file breaks a bound this path does not measure per record.
    """
    lines = _lines(data, bounds)
    table = _read_typed(data)
    if table.num_rows != len(lines):
        raise NotColumnar("a line holds something other than one JSON object")
    if not _valid(table):
        raise NotColumnar("pyarrow read the file into an invalid table")
    _check_numbers(table)
    if not within(table.schema, bounds):
        raise NotColumnar("some record is too deep or too wide: the row path says which")
    return _identity_order(table, lines), lines


# -- what the file must be before pyarrow reads it ---------------------------------------------------------


def _lines(data: bytes, bounds: Bounds) -> Lines:
    """The lines holding a record (the row path's non-blank lines), once the text is known to be UTF-8, short
    enough and shallow enough for pyarrow to read in time linear in it."""
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            raise NotColumnar("the file is not all UTF-8") from None
    newlines = _newlines(data)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    if len(starts) and int((ends - starts).max()) > min(unchecked_length(bounds), _LONGEST_LINE):
        raise NotColumnar("a line is long enough to hold a record too wide, or longer than half a block")
    # Each line's opening brackets: a record holds at least one (a line without is blank, or no object, which
    # pyarrow refuses), and it cannot nest deeper than it has them.
    openers = np.fromiter(map(len, data.translate(None, _OPENERS_AND_NEWLINES).split(b"\n")), dtype=np.int64,
                          count=len(starts))
    if len(openers) and int(openers.max()) > bounds.depth:
        _check_depth(data, bounds)
    for line in np.flatnonzero(openers == 0).tolist():
        if data[starts[line] : ends[line]].strip():  # what the row path calls blank
            raise NotColumnar("a line holds no JSON object")
    records = np.flatnonzero(openers)
    if not len(records):
        raise NotColumnar("no record")
    return Lines(data, starts[records], ends[records])


def _newlines(data: bytes) -> np.ndarray:
    """Offsets of the newlines, found a block at a time so the comparison's temporary stays one block."""
    text = np.frombuffer(data, dtype=np.uint8)
    found = [np.flatnonzero(text[at : at + BLOCK_BYTES] == ord("\n")) + at for at in range(0, len(text), BLOCK_BYTES)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _check_depth(data: bytes, bounds: Bounds) -> None:
    """Raise NotColumnar when a line nests more than `bounds.depth` levels, counting brackets outside strings.

    Escaped backslashes, then escaped quotes, are dropped first (left to right, as a JSON reader pairs them), so
    every quote left delimits a string; the strings are dropped, and the brackets left give the depth.
    """
    structure = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _STRUCTURE)
    brackets = _STRING.sub(b"", structure)
    if b'"' in brackets:
        raise NotColumnar("a line has an unterminated string")
    chars = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(_DEPTH_STEP[chars], dtype=np.int64)
    if not len(depth):
        return
    if int(depth.max()) > bounds.depth or int(depth.min()) < 0 or depth[chars == ord("\n")].any() or depth[-1]:
        raise NotColumnar("a line nests too deep, or its brackets do not balance")


# -- reading with the row path's types -----------------------------------------------------------------------


def _read_typed(data: bytes) -> pa.Table:
    end = data.rfind(b"\n", 0, BLOCK_BYTES) + 1 if len(data) > BLOCK_BYTES else len(data)
    table = _parse(data[:end], None, threads=False)
    if end < len(data):
        hint = _as_text(table.schema)
        try:
            whole = _parse(data, hint, threads=True)
            if whole.schema.equals(hint):
                return whole
        except NotColumnar as refused:
            if _PARSE_ERROR in str(refused):
                raise  # not JSON, or a value of another kind: reading without the sample's types fails as well
            # else the sample's types are too narrow for a later line (an integer, then a float; null, then a value)
        table = _parse(data, None, threads=False)
    typed = _as_text(table.schema)
    if typed.equals(table.schema) and _valid(table):
        return table
    # Read again with every type given: no timestamps, and none of pyarrow 26's inference slips (a list whose
    # first item is null, `[null, 1]`, loses that null and comes out invalid).
    return _parse(data, typed, threads=True)


def _valid(table: pa.Table) -> bool:
    try:
        table.validate(full=True)  # ~35 ms for 250k records
    except pa.ArrowInvalid:
        return False
    return True


def _parse(data: bytes, schema: pa.Schema | None, *, threads: bool) -> pa.Table:
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        return pj.read_json(pa.BufferReader(data), read_options=pj.ReadOptions(use_threads=threads,
                            block_size=BLOCK_BYTES), parse_options=options)
    except _READ_ERRORS as exc:
        raise NotColumnar(f"pyarrow cannot read the file as one table: {exc}") from None


def _as_text(schema: pa.Schema) -> pa.Schema:
    """`schema` with every timestamp or date pyarrow inferred from a string typed as the string it was."""
    return pa.schema([f.with_type(_text_type(f.type)) for f in schema])


def _text_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_temporal(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_text_type(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_text_type(t.value_type)))
    return t


def _check_numbers(table: pa.Table) -> None:
    """Raise NotColumnar when a double could not come from the row path: NaN or infinite (orjson refuses
    them), or integral and at least 2^53 (an integer beyond 64 bits, or one `pa.array` will not mix with
    floats)."""
    for column in table.columns:
        for chunk in column.chunks:
            for leaf in _double_leaves(chunk):
                if leaf.null_count == len(leaf):
                    continue
                finite = pc.is_finite(leaf)
                integral_big = pc.and_(pc.greater_equal(pc.abs(leaf), _EXACT_INTEGERS), pc.equal(pc.floor(leaf), leaf))
                if not pc.all(finite).as_py() or pc.any(integral_big).as_py():
                    raise NotColumnar("a number is not finite, or an integer beyond what a double holds exactly")


def _double_leaves(arr: pa.Array) -> list[pa.Array]:
    """The floating-point arrays inside `arr`, through structs and lists."""
    t = arr.type
    if pa.types.is_floating(t):
        return [arr]
    if pa.types.is_struct(t):
        return [leaf for i in range(t.num_fields) for leaf in _double_leaves(arr.field(i))]
    if pa.types.is_list(t):
        return _double_leaves(arr.flatten())
    return []


# -- identity namespaces ------------------------------------------------------------------------------------------


def _identity_order(table: pa.Table, lines: Lines) -> pa.Table:
    """identityMap's namespaces in the order the row path's inference meets them.

    The row path drops a namespace whose list is null before inference, so its struct has the namespaces in the
    order of each one's first non-null list (ties: the key order of that record), while pyarrow counts a null
    as a first appearance. The order decides each record's map entry order, so it must be the same.
    """
    at = table.schema.get_field_index(IDENTITY_MAP)
    if at < 0 or not pa.types.is_struct(table.schema.field(at).type):
        return table
    column = table.column(at).combine_chunks()
    names = [f.name for f in column.type]
    if "" in names:
        raise NotColumnar("identityMap names an empty namespace, which the row path refuses even when null")
    members = column.flatten()  # folds null identityMaps into every member
    first = []
    for member in members:
        valid = member.is_valid().to_numpy(zero_copy_only=False)
        first.append(int(np.argmax(valid)) if valid.any() else len(column))
    tied = {row for row, times in Counter(first).items() if row < len(column) and times > 1}
    keys = {row: list(orjson.loads(lines.raw(row))[IDENTITY_MAP]) for row in tied}  # the record's key order
    order = sorted(range(len(names)), key=lambda i: (first[i], keys[first[i]].index(names[i]) if first[i] in keys
                                                     else 0))
    if order == list(range(len(names))):
        return table
    struct = pa.StructArray.from_arrays([members[i] for i in order], fields=[column.type.field(i) for i in order],
                                        mask=column.is_null())
    return table.set_column(at, IDENTITY_MAP, struct)
