"""Test-only reference: evaluate a PQL AST over one profile as Python values (a row of `Table.to_pylist()`).

Written from SEGMENTATION.md section 4's semantics, independently of the SQL the compiler emits: missing => None,
None becomes False at the nearest boolean position, notIn and doesNot... are False on None, /0 is None.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from upstack.segments import nodes, pql, timeunits

_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Scope:
    vars: tuple[tuple[str, object], ...]  # select variables and let names, innermost last
    items: tuple[object, ...]  # implicit items of arr[cond] and .sum(e), innermost last


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return timeunits.utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return timeunits.utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _mapping(value: object) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):  # Arrow maps come back as lists of (key, value) pairs
        return dict(value)
    return None


class Reference:
    def __init__(self, profile: dict, now: datetime) -> None:
        self.profile, self.now = profile, timeunits.utc(now)

    def holds(self, node: nodes.Node) -> bool:
        return self.cond(node, Scope((), ()))

    # ---- conditions --------------------------------------------------------------------------------------------

    def cond(self, node: nodes.Node, sc: Scope) -> bool:
        match node:
            case nodes.BoolOp("and", items):
                return all(self.cond(i, sc) for i in items)
            case nodes.BoolOp("or", items):
                return any(self.cond(i, sc) for i in items)
            case nodes.Not(expr):
                return not self.cond(expr, sc)
            case nodes.Compare(op, left, right):
                return self.compare(op, self.val(left, sc), self.val(right, sc))
            case nodes.In(negated, left, right):
                return self.in_(negated, self.val(left, sc), right, sc)
            case nodes.Like(subject, pattern):
                text = self.val(subject, sc)
                regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
                return text is not None and re.fullmatch(regex, text, re.S) is not None
            case nodes.Occurs():
                return self.occurs(node, sc)
            case nodes.Select(binds) | nodes.Quant("exists", binds):
                return self.count(binds, sc) > 0
            case nodes.Quant("forall", (bind,)):
                items = self.val(bind.source, sc) or []
                return all(bind.cond is None or self.cond(bind.cond, self.bind(sc, bind.var, it)) for it in items)
            case nodes.Let(name, value, body):
                return self.cond(body, Scope(sc.vars + ((name, self.val(value, sc)),), sc.items))
        value = self.val(node, sc)
        if isinstance(value, list):
            return len(value) > 0
        return value is True

    def compare(self, op: str, a: object, b: object) -> bool:
        if a is None or b is None:
            return False
        if isinstance(a, datetime | date) or isinstance(b, datetime | date):
            a, b = _time(a), _time(b)
            if a is None or b is None:
                return False
        return _OPS[op](a, b)

    def in_(self, negated: bool, subject: object, right: nodes.Node, sc: Scope) -> bool:
        if isinstance(right, nodes.ArrayLit):
            items = [v for v in (self.val(i, sc) for i in right.items) if v is not None]
        else:
            items = self.val(right, sc)
            if items is None:
                return False
        if subject is None:
            return False
        found = any(i is not None and i == subject for i in items)
        return not found if negated else found

    # ---- values ------------------------------------------------------------------------------------------------

    def bind(self, sc: Scope, name: str, item: object) -> Scope:
        return Scope(sc.vars + ((name, item),), sc.items)

    def name(self, name: str, sc: Scope) -> object:
        for var, value in reversed(sc.vars):
            if var == name:
                return value
        for item in reversed(sc.items):
            if isinstance(item, dict) and name in item:
                return item[name]
        return self.profile.get(name)

    def val(self, node: nodes.Node, sc: Scope) -> object:  # noqa: C901 - one case per node kind
        match node:
            case nodes.Lit(value):
                return value
            case nodes.Name(name):
                return self.name(name, sc)
            case nodes.Dollar():
                return self.profile
            case nodes.Member(obj, name):
                holder = _mapping(self.val(obj, sc))
                return None if holder is None else holder.get(name)
            case nodes.TimeWord(word):
                return self.word(word)
            case nodes.Arith(first, rest):
                result = self.val(first, sc)
                for op, operand in rest:
                    result = _arith(op, result, self.val(operand, sc))
                return result
            case nodes.Negate(expr):
                return _arith("-", 0, self.val(expr, sc))
            case nodes.Call("date", args):
                return datetime(*(a.value for a in args), tzinfo=UTC)
            case nodes.Call("currentMonth"):
                return self.now.month
            case nodes.Call("currentYear"):
                return self.now.year
            case nodes.Call("currentDayOfMonth"):
                return self.now.day
            case nodes.Call("inSegment", (nodes.Lit(segment),)):
                ups = _mapping((_mapping(self.profile.get("segmentMembership")) or {}).get("ups")) or {}
                entry = ups.get(segment) or {}
                return entry.get("status") in ("realized", "existing")
            case nodes.Call("if", (test, then, other)):
                return self.val(then, sc) if self.cond(test, sc) else self.val(other, sc)
            case nodes.Method():
                return self.method(node, sc)
            case nodes.Filter(obj, test):
                items = self.val(obj, sc)
                if items is None:
                    return None
                return [it for it in items if self.cond(test, Scope(sc.vars, sc.items + (it,)))]
            case nodes.Let(name, value, body):
                return self.val(body, Scope(sc.vars + ((name, self.val(value, sc)),), sc.items))
            case nodes.Over(func, expr, bind):
                items = self.val(bind.source, sc) or []
                kept = [it for it in items if bind.cond is None or self.cond(bind.cond, self.bind(sc, bind.var, it))]
                return _aggregate(func, [self.val(expr, self.bind(sc, bind.var, it)) for it in kept])
        return self.cond(node, sc)

    def method(self, node: nodes.Method, sc: Scope) -> object:
        name, args = node.name, node.args
        if name == "count" and isinstance(node.obj, nodes.Select):
            return self.count(node.obj.binds, sc)
        obj = self.val(node.obj, sc)
        if name == "isNull":
            return obj is None
        if name == "isNotNull":
            return obj is not None
        if name in ("getMonth", "getYear", "getDayOfMonth"):
            when = _time(obj)
            return None if when is None else {"getMonth": when.month, "getYear": when.year,
                                              "getDayOfMonth": when.day}[name]
        if name == "count":
            return 0 if obj is None else len(obj)
        if name == "get":
            holder = _mapping(obj)
            return None if holder is None else holder.get(self.val(args[0], sc))
        if name == "includes":
            return self.in_(False, self.val(args[0], sc), node.obj, sc)
        if name == "intersects":
            other = [v for v in (self.val(a, sc) for a in args[0].items)] if isinstance(args[0], nodes.ArrayLit) \
                else self.val(args[0], sc)
            return obj is not None and other is not None and any(v is not None and v in other for v in obj)
        if name in ("sum", "average", "min", "max"):
            items = obj or []
            values = items if not args else [self.val(args[0], Scope(sc.vars, sc.items + (it,))) for it in items]
            return _aggregate(name, values)
        return self.string_method(name, obj, [self.val(a, sc) for a in args])

    def string_method(self, name: str, text: object, args: list) -> bool:
        pattern = args[0]
        if text is None or pattern is None:
            return False
        if name == "matches":
            return re.search(pattern, text) is not None
        if len(args) == 2 and args[1] is False:
            text, pattern = text.lower(), pattern.lower()
        tests = {"startsWith": text.startswith(pattern), "endsWith": text.endswith(pattern),
                 "contains": pattern in text, "equals": text == pattern}
        if name.startswith("doesNot"):
            return not tests[{"doesNotStartWith": "startsWith", "doesNotEndWith": "endsWith",
                              "doesNotContain": "contains"}[name]]
        if name == "notEqualTo":
            return not tests["equals"]
        return tests[name]

    def count(self, binds: tuple[nodes.Bind, ...], sc: Scope) -> int:
        bind, total = binds[0], 0
        for item in self.val(bind.source, sc) or []:
            inner = self.bind(sc, bind.var, item)
            if bind.cond is None or self.cond(bind.cond, inner):
                total += 1 if len(binds) == 1 else self.count(binds[1:], inner)
        return total

    # ---- time --------------------------------------------------------------------------------------------------

    def word(self, word: str) -> datetime:
        today = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        return {"now": self.now, "today": today, "yesterday": timeunits.add(today, -1, "day"),
                "tomorrow": timeunits.add(today, 1, "day")}[word]

    def period(self, node: nodes.Node, sc: Scope) -> tuple[datetime | None, datetime | None]:
        """[start, end) of a time word, date() or this/last/next unit; a point has end == start."""
        if isinstance(node, nodes.TimeWord) and node.word != "now":
            start = self.word(node.word)
            return start, timeunits.add(start, 1, "day")
        if isinstance(node, nodes.Call) and node.name == "date":
            start = self.val(node, sc)
            return start, timeunits.add(start, 1, "day")
        if isinstance(node, nodes.Period):
            return timeunits.period(node.rel, node.unit, self.now)
        point = _time(self.val(node, sc))
        return point, point

    def occurs(self, node: nodes.Occurs, sc: Scope) -> bool:
        t = _time(self.val(node.subject, sc))
        start, end = self.period(node.ref, sc)
        if t is None or start is None:
            return False
        if node.kind == "between":
            high_start, high_end = self.period(node.ref2, sc)
            if high_start is None:
                return False
            return start <= t and (t <= high_start if high_start == high_end else t < high_end)
        if node.kind == "on":
            return t == start if start == end else start <= t < end
        if node.kind == "direction":
            if node.direction == "before":
                return t < start
            return t > start if start == end else t >= end
        n, unit, back = node.amount, node.unit, node.direction == "before"
        if node.op == "=":
            low = timeunits.add(timeunits.truncate(start, unit), -n if back else n, unit)
            return low <= t < timeunits.add(low, 1, unit)
        shifted = timeunits.add(start, -n if back else n, unit)
        if back:
            return {"<=": shifted <= t <= start, "<": shifted < t <= start, ">": t < shifted,
                    ">=": t <= shifted}[node.op]
        return {"<=": start <= t <= shifted, "<": start <= t < shifted, ">": t > shifted, ">=": t >= shifted}[node.op]


def _arith(op: str, a: object, b: object) -> object:
    if a is None or b is None:
        return None
    if op in "+-*":
        result = a + b if op == "+" else a - b if op == "-" else a * b
        if isinstance(result, int) and not -(1 << 63) <= result < 1 << 63:
            return None  # 64-bit overflow is null
        return result
    if b == 0:
        return None
    if op == "/":
        return a / b
    if isinstance(a, int) and isinstance(b, int):  # SQL %: the sign of the dividend
        return int(math.copysign(abs(a) % abs(b), a))
    return math.fmod(a, b)


def _aggregate(func: str, values: list) -> object:
    present = [v for v in values if v is not None]
    if func == "sum":
        return float(sum(present))
    if not present:
        return None
    if func == "average":
        return sum(present) / len(present)
    return min(present) if func == "min" else max(present)


def evaluate(expression: str, profiles: list[dict], now: datetime) -> list[bool]:
    node = pql.parse(expression)
    return [Reference(profile, now).holds(node) for profile in profiles]
