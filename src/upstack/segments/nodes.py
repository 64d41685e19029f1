"""The PQL abstract syntax tree: frozen dataclasses the parser builds and the compiler walks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lit:
    value: str | int | float | bool | None


@dataclass(frozen=True)
class ArrayLit:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Dollar:
    """`$1`: the profile itself."""


@dataclass(frozen=True)
class TimeWord:
    word: str  # now | today | yesterday | tomorrow


@dataclass(frozen=True)
class Period:
    rel: str  # this | last | next
    unit: str


@dataclass(frozen=True)
class Member:
    obj: Node
    name: str


@dataclass(frozen=True)
class Method:
    obj: Node
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Filter:
    obj: Node
    cond: Node


@dataclass(frozen=True)
class Not:
    expr: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    negated: bool
    left: Node
    right: Node


@dataclass(frozen=True)
class Like:
    subject: Node
    pattern: str


@dataclass(frozen=True)
class Arith:
    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Negate:
    expr: Node


@dataclass(frozen=True)
class Occurs:
    """`subject occurs ...`: kind is amount (op n unit direction ref), direction (before|after ref), on (ref) or
    between (ref, ref2)."""

    subject: Node
    kind: str
    ref: Node
    ref2: Node | None = None
    op: str = ""
    amount: int = 0
    unit: str = ""
    direction: str = ""


@dataclass(frozen=True)
class Let:
    name: str
    value: Node
    body: Node


@dataclass(frozen=True)
class Bind:
    var: str
    source: Node
    cond: Node | None


@dataclass(frozen=True)
class Select:
    binds: tuple[Bind, ...]


@dataclass(frozen=True)
class Quant:
    kind: str  # exists | forall
    binds: tuple[Bind, ...]


@dataclass(frozen=True)
class Over:
    func: str  # sum | average | min | max
    expr: Node
    bind: Bind


Node = (Lit | ArrayLit | Name | Dollar | TimeWord | Period | Member | Method | Call | Filter | Not | BoolOp | Compare
        | In | Like | Arith | Negate | Occurs | Let | Select | Quant | Over)
