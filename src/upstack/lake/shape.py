"""The record bounds of CONTRACT section 4: how deep a record nests and how many leaf fields it has, counted without recursion.

Depth: the record object is level 1, each nested object or array one more. Leaf fields: distinct paths to a
value that is not a non-empty object or array (scalars, nulls, `{}`, `[]`), the items of an array sharing
their paths (`a[].b` is one field however many items hold it).

A second, fixed bound keeps every accepted record readable after it is stored: Arrow's Parquet reader
refuses a schema whose paths are longer than 100 nodes (root, one per struct, two per list or map, the
leaf), and an export with eventList wraps an event in three more (the list's two, the event struct). So a
record's own paths may take at most 97 nodes: 48 nested arrays, 95 nested objects. Under the default depth
(32) it never applies; it bounds what a larger `max_record_depth` may let through.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from upstack.lake.rows import SYSTEM_COLUMN, TOO_DEEP, TOO_WIDE

# The contract's defaults; callers pass Settings.max_record_depth and max_record_fields.
MAX_RECORD_DEPTH = 32
MAX_RECORD_FIELDS = 10_000
PARQUET_MAX_PATH = 100  # Arrow's Parquet reader: "Parquet schema too deeply nested" beyond (measured, pyarrow 26)
EXPORT_WRAPPER_PATH = 3  # eventList: LIST group, repeated group, event struct
MAX_STORED_PATH = PARQUET_MAX_PATH - EXPORT_WRAPPER_PATH
# Bytes of JSON text per leaf field below which a record cannot be too wide (a field takes at least 4).
MIN_LEAF_BYTES = 3


@dataclass(frozen=True)
class Bounds:
    """The deepest and widest record ingestion accepts."""

    depth: int = MAX_RECORD_DEPTH
    fields: int = MAX_RECORD_FIELDS


class Violation(Exception):
    """A record or schema out of bounds: `code` is the row error code, `message` says by how much."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def unchecked_length(bounds: Bounds) -> int:
    """The longest JSON text of a record that cannot hold more than `bounds.fields` leaf fields: a field takes
    at least 4 bytes (`"":0` and a separator)."""
    return MIN_LEAF_BYTES * bounds.fields - 1


def within(schema: pa.Schema, bounds: Bounds) -> bool:
    """Whether every record of this schema is within bounds (check_schema passes)."""
    try:
        check_schema(schema, bounds)
    except Violation:
        return False
    return True


def check_record(record: dict, bounds: Bounds) -> None:
    """Raise Violation when a parsed JSON record nests deeper or holds more leaf fields than `bounds` allow.

    One pass over the values with an explicit stack, stopping at the first broken bound. Outside arrays
    every value has its own path; inside them, (parent path, key) pairs are numbered so that items share.
    """
    # (container, its depth, its Parquet path nodes: the record is the root, an object adds 1, an array 2,
    # its path id, whether it is inside an array)
    stack: list[tuple[dict | list, int, int, int, bool]] = [(record, 1, 1, 0, False)]
    ids: dict[tuple[int, str | None], int] = {}
    shared: set[int] = set()
    fields = fresh = 0
    while stack:
        value, depth, nodes, pid, in_array = stack.pop()
        if depth > bounds.depth:
            raise Violation(TOO_DEEP, f"the record nests objects and arrays {depth} levels deep (the record "
                                      f"itself is level 1), more than the {bounds.depth} allowed")
        if type(value) is dict:
            items = value.items()
        else:
            items = ((None, v) for v in value)
            in_array = True
        for key, child in items:
            if in_array:
                cid = ids.get((pid, key))
                if cid is None:
                    fresh += 1
                    cid = ids[(pid, key)] = fresh
            else:
                fresh += 1
                cid = fresh
            kind = type(child)
            if (kind is dict or kind is list) and child:
                stack.append((child, depth + 1, nodes + (1 if kind is dict else 2), cid, in_array))
                continue
            # The leaf's own node; an empty array is stored as a list of nulls (two more).
            if nodes + (3 if kind is list else 1) > MAX_STORED_PATH:
                raise Violation(TOO_DEEP, "the record nests arrays so deep that its Parquet paths would be "
                                          f"longer than an export can read back ({MAX_STORED_PATH} nodes)")
            if in_array:
                if cid in shared:
                    continue
                shared.add(cid)
            fields += 1
            if fields > bounds.fields:
                raise Violation(TOO_WIDE, f"the record has more than {bounds.fields} leaf fields (distinct "
                                          "paths to a value, array items counted once)")


def check_schema(schema: pa.Schema, bounds: Bounds) -> None:
    """Raise Violation when the records of a Parquet file (all of one schema) break `bounds`: its deepest
    path and its leaf count are every row's (the system column, ours to write, is not counted)."""
    fields = 0
    deepest, longest = 1, 1
    # (type, depth of the object or array holding it, Parquet path nodes so far)
    stack = [(f.type, 1, 1) for f in schema if f.name != SYSTEM_COLUMN]
    while stack:
        t, depth, nodes = stack.pop()
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_struct(t) and t.num_fields:
            stack.extend((f.type, depth + 1, nodes + 1) for f in t)
            deepest = max(deepest, depth + 1)
        elif _is_list(t):
            stack.append((t.value_type, depth + 1, nodes + 2))
            deepest = max(deepest, depth + 1)
        elif pa.types.is_map(t):
            stack.extend([(t.key_type, depth + 1, nodes + 2), (t.item_type, depth + 1, nodes + 2)])
            deepest = max(deepest, depth + 1)
        else:
            fields += 1
            longest = max(longest, nodes + 1)
    if deepest > bounds.depth:
        raise Violation(TOO_DEEP, f"its schema nests objects and arrays {deepest} levels deep (counting the "
                                  f"record itself), more than the {bounds.depth} allowed")
    if longest > MAX_STORED_PATH:
        raise Violation(TOO_DEEP, f"its schema has paths of {longest} Parquet nodes, longer than an export can "
                                  f"read back ({MAX_STORED_PATH} nodes)")
    if fields > bounds.fields:
        raise Violation(TOO_WIDE, f"its schema has {fields} leaf fields, more than the {bounds.fields} allowed")


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or (
        pa.types.is_list_view(t) or pa.types.is_large_list_view(t))
