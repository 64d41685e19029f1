"""What the compiler knows of a value: its SQL text and its PQL type (read from the Arrow schema), and the scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa

from upstack.segments.pql import PqlError

NUMERIC = ("int", "float")


@dataclass(frozen=True)
class Ty:
    kind: str  # null bool int float string time list struct map
    fields: tuple[tuple[str, Ty], ...] = ()
    elem: Ty | None = None  # list item, map value

    def field(self, name: str) -> Ty | None:
        return dict(self.fields).get(name)

    @property
    def noun(self) -> str:
        """With its article: "a number", "an object"."""
        word = {"int": "number", "float": "number", "struct": "object", "list": "array", "time": "date-time",
                "bool": "boolean", "other": "value of an unsupported type"}.get(self.kind, self.kind)
        return ("an " if word[0] in "aeiou" else "a ") + word


NULL, BOOL, INT, FLOAT, STRING, TIME = (Ty(k) for k in ("null", "bool", "int", "float", "string", "time"))


def arrow_type(t: pa.DataType) -> Ty:
    if pa.types.is_dictionary(t):
        return arrow_type(t.value_type)
    if pa.types.is_struct(t):
        return Ty("struct", tuple((t.field(i).name, arrow_type(t.field(i).type)) for i in range(t.num_fields)))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return Ty("list", elem=arrow_type(t.value_type))
    if pa.types.is_map(t):
        return Ty("map", elem=arrow_type(t.item_type))
    if pa.types.is_boolean(t):
        return BOOL
    if pa.types.is_integer(t):
        return INT
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return FLOAT
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STRING
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return TIME
    if pa.types.is_null(t):
        return NULL
    return Ty("other")


@dataclass(frozen=True)
class V:
    sql: str
    ty: Ty
    total: bool = False  # a boolean already made two-valued


FALSE, TRUE = V("false", BOOL, True), V("true", BOOL, True)


@dataclass(frozen=True)
class Frame:
    """A list item in scope: named by a select/quantifier variable, or implicit inside `arr[cond]`."""

    var: str | None
    sql: str
    ty: Ty


@dataclass(frozen=True)
class Env:
    frames: tuple[Frame, ...] = ()
    lets: tuple[tuple[str, V], ...] = ()

    def push(self, frame: Frame) -> Env:
        return Env(self.frames + (frame,), self.lets)


def total(sql: str) -> str:
    """A predicate made two-valued: null becomes false where it stands."""
    return f"coalesce({sql}, false)"


MAX_SQL_CHARS = 1 << 20


_Compiled = TypeVar("_Compiled", str, V)


def bounded(compiled: _Compiled) -> _Compiled:
    """let inlines its value wherever the name is used, so nested lets could double the text at every level."""
    if len(compiled.sql if isinstance(compiled, V) else compiled) > MAX_SQL_CHARS:
        raise PqlError(f"expression compiles to more than {MAX_SQL_CHARS} characters of SQL")
    return compiled


def balanced(parts: list[str], op: str) -> str:
    """`a OP b OP c ...` as a balanced tree, so a long chain nests log2(n) deep in the engines' parsers."""
    while len(parts) > 1:
        parts = [f"({parts[i]} {op} {parts[i + 1]})" if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]
