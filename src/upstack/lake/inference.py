"""Build one Arrow table from parsed JSON records, rejecting the records whose types conflict with the file's."""

from __future__ import annotations

import pyarrow as pa

# What pyarrow raises when values of one column cannot share a type (or a number does not fit int64).
_ARROW_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def infer_table(records: list[dict]) -> tuple[pa.Table, dict[int, str]]:
    """The records as a table with nested objects as structs and arrays as lists, plus rejected records.

    Integers and floats in one field promote to double. Any other disagreement (``age`` a number in
    most records and a string in a few) rejects the minority records: the returned dict maps a
    record's index to why. The first attempt is a single pyarrow inference in C++; the slower
    search for culprits runs only when that attempt fails.
    """
    try:
        return _to_table(records), {}
    except _ARROW_CONVERSION_ERRORS:
        pass
    rejected = find_conflicts(records)
    kept = [i for i in range(len(records)) if i not in rejected]
    try:
        table = _to_table([records[i] for i in kept])
    except _ARROW_CONVERSION_ERRORS:
        # A conflict our kinds do not model: fall back to testing the records one by one.
        for i in kept:
            try:
                _to_table([records[i]])
            except _ARROW_CONVERSION_ERRORS as exc:
                rejected[i] = f"the record cannot be stored: {exc}"
        kept = [i for i in kept if i not in rejected]
        try:
            table = _to_table([records[i] for i in kept])
        except _ARROW_CONVERSION_ERRORS as exc:
            for i in kept:
                rejected[i] = f"the records of this file cannot share one schema: {exc}"
            kept = []
            table = pa.table({})
    return table, rejected


def _to_table(records: list[dict]) -> pa.Table:
    if not records:
        return pa.table({})
    structs = pa.array(records)
    if has_empty_struct(structs.type):
        structs = without_empty_structs(structs)
    return pa.Table.from_struct_array(structs)


def find_conflicts(records: list[dict]) -> dict[int, str]:
    """Index -> message for every record whose value somewhere disagrees with the majority kind there."""
    rejected: dict[int, str] = {}
    _visit(list(enumerate(records)), "", rejected)
    return rejected


def _kind(value: object) -> str | None:
    if value is None:
        return None
    if value is True or value is False:
        return "boolean"
    if isinstance(value, int):
        return "number" if _INT64_MIN <= value <= _INT64_MAX else "integer beyond 64 bits"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _visit(values: list[tuple[int, object]], path: str, rejected: dict[int, str]) -> None:
    groups: dict[str, list[tuple[int, object]]] = {}
    for row, value in values:
        kind = _kind(value)
        if kind is not None:
            groups.setdefault(kind, []).append((row, value))
    if not groups:
        return
    majority = max(groups, key=lambda k: len(groups[k]))  # ties go to the kind seen first
    where = path or "the record"
    for kind, members in groups.items():
        if kind == "integer beyond 64 bits":
            message = f"'{where}' holds an integer beyond 64 bits"
        elif kind != majority:
            message = (
                f"'{where}' is {_article(kind)} here but {_article(majority)} in most records of this file"
            )
        else:
            continue
        for row, _value in members:
            rejected.setdefault(row, message)
    kept = [(row, value) for row, value in groups[majority] if row not in rejected]
    if majority == "object":
        children: dict[str, list[tuple[int, object]]] = {}
        for row, value in kept:
            for key, child in value.items():
                children.setdefault(key, []).append((row, child))
        for key, child_values in children.items():
            _visit(child_values, f"{path}.{key}" if path else key, rejected)
    elif majority == "array":
        _visit([(row, item) for row, value in kept for item in value], f"{path}[]", rejected)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def has_empty_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return t.num_fields == 0 or any(has_empty_struct(f.type) for f in t)
    if pa.types.is_list(t):
        return has_empty_struct(t.value_type)
    return False


def without_empty_structs(arr: pa.Array) -> pa.Array:
    """Parquet cannot store a struct without fields (a field that was always ``{}``): store it as null."""
    t = arr.type
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return pa.nulls(len(arr))
        children = [without_empty_structs(arr.field(i)) for i in range(t.num_fields)]
        fields = [pa.field(t.field(i).name, child.type) for i, child in enumerate(children)]
        return pa.StructArray.from_arrays(children, fields=fields, mask=arr.is_null())
    if pa.types.is_list(t):
        return pa.ListArray.from_arrays(arr.offsets, without_empty_structs(arr.values), mask=arr.is_null())
    return arr
