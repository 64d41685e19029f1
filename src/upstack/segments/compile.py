"""Compile a PQL AST to one SQL boolean expression over a row that is one merged profile (DuckDB or Spark SQL).

Null rule: every predicate is made two-valued where it stands (`coalesce(p, false)`), so null reaches the nearest
boolean position and becomes false there; `not` of a false predicate is then true, as PQL has it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from upstack.segments import pql, timeunits
from upstack.segments.dialect import DIALECTS, Dialect
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
    if pa.types.is_string(t) or pa.types.is_large_string(t):
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


@dataclass
class Compiler:
    root: Ty
    now: datetime
    dialect: Dialect
    alias: str = "profile"
    _names: int = field(default=0)

    def fresh(self) -> str:
        self._names += 1
        return self.dialect.ident(f"_pql{self._names}")

    # ---- literals and names ------------------------------------------------------------------------------------

    def literal(self, value: object) -> V:
        if value is None:
            return V("NULL", NULL)
        if isinstance(value, bool):
            return TRUE if value else FALSE
        if isinstance(value, int):
            return V(str(value), INT)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise PqlError(f"number {value} is out of range")
            text = repr(value)
            return V(text if "e" in text else text + "E0", FLOAT)
        if isinstance(value, datetime):
            return V(self.dialect.timestamp(value), TIME)
        return V(self.dialect.string(str(value)), STRING)

    def name(self, name: str, env: Env) -> V:
        for let_name, value in reversed(env.lets):
            if let_name == name:
                return value
        for frame in reversed(env.frames):
            if frame.var == name:
                return V(frame.sql, frame.ty)
        for frame in reversed(env.frames):
            if frame.var is None and frame.ty.kind == "struct" and frame.ty.field(name) is not None:
                return self.member(V(frame.sql, frame.ty), name)
        return self.member(V(self.dialect.ident(self.alias), self.root), name)

    def member(self, obj: V, name: str) -> V:
        if obj.ty.kind == "null":
            return V("NULL", NULL)
        if obj.ty.kind == "struct":
            ty = obj.ty.field(name)
            return V("NULL", NULL) if ty is None else V(f"{obj.sql}.{self.dialect.ident(name)}", ty)
        if obj.ty.kind == "map":
            return V(f"{obj.sql}[{self.dialect.string(name)}]", obj.ty.elem or NULL)
        if obj.ty.kind == "list":
            raise PqlError(f'cannot read field "{name}" of an array: reach its items with select, exists or [...]')
        raise PqlError(f'cannot read field "{name}" of {obj.ty.noun}')

    # ---- the walk ----------------------------------------------------------------------------------------------

    def value(self, node: pql.Node, env: Env) -> V:
        match node:
            case pql.Lit(value):
                return self.literal(value)
            case pql.ArrayLit():
                raise PqlError("an array literal can only be the right side of in/notIn or an argument")
            case pql.Name(name):
                return self.name(name, env)
            case pql.Dollar():
                return V(self.dialect.ident(self.alias), self.root)
            case pql.Member(obj, name):
                return self.member(self.value(obj, env), name)
            case pql.TimeWord(word):
                return self.literal(self.time_word(word))
            case pql.Period():
                raise PqlError("this/last/next <unit> is only a time after occurs")
            case pql.Arith():
                return self.arith(node, env)
            case pql.Negate(expr):
                operand = self.number(self.value(expr, env), "-")
                return operand if operand.ty.kind == "null" else V(f"(- {operand.sql})", operand.ty)
            case pql.Call():
                return self.call(node, env)
            case pql.Method():
                return self.method(node, env)
            case pql.Filter(obj, cond):
                items = self.value(obj, env)
                if items.ty.kind == "null":
                    return items
                self.need_list(items, "[...]")
                var = self.fresh()
                test = self.condition(cond, env.push(Frame(None, var, items.ty.elem or NULL)))
                return V(self.dialect.filter(items.sql, var, test), items.ty)
            case pql.Let(name, value, body):
                return self.value(body, Env(env.frames, env.lets + ((name, self.value(value, env)),)))
            case pql.Over(func, expr, bind):
                items, var, frame_env = self.bound(bind, env)
                if items is None:
                    return V("0E0", FLOAT) if func == "sum" else V("NULL", NULL)
                return self.aggregate(func, items, var, self.value(expr, frame_env))
            case _:
                return self.condition(node, env)

    def condition(self, node: pql.Node, env: Env) -> str:
        """A two-valued SQL boolean (never NULL)."""
        match node:
            case pql.BoolOp(op, items):
                return _balanced([self.condition(item, env) for item in items], op.upper())
            case pql.Not(expr):
                return f"(NOT {self.condition(expr, env)})"
            case pql.Compare(op, left, right):
                return self.compare(op, self.value(left, env), self.value(right, env))
            case pql.In():
                return self.in_(node, env)
            case pql.Like(subject, pattern):
                text = self.string(self.value(subject, env), "like")
                if text.ty.kind == "null":
                    return "false"
                return _total(self.dialect.regex(text.sql, self.dialect.string(like_regex(pattern))))
            case pql.Occurs():
                return self.occurs(node, env)
            case pql.Select(binds):
                return f"({self.count(binds, env)} > 0)"
            case pql.Quant(kind, binds):
                return self.quantifier(kind, binds, env)
            case pql.Let(name, value, body):
                return self.condition(body, Env(env.frames, env.lets + ((name, self.value(value, env)),)))
        return self.truth(self.value(node, env))

    def truth(self, v: V) -> str:
        if v.ty.kind == "bool":
            return v.sql if v.total else _total(v.sql)
        if v.ty.kind == "null":
            return "false"
        if v.ty.kind == "list":  # a non-empty (filtered) array is true
            return _total(f"({self.dialect.size(v.sql)} > 0)")
        raise PqlError(f"{v.ty.noun} is not a condition")

    # ---- operators ---------------------------------------------------------------------------------------------

    def comparable(self, op: str, left: V, right: V) -> tuple[V, V]:
        kinds = {left.ty.kind, right.ty.kind}
        if kinds <= set(NUMERIC) or len(kinds) == 1 and kinds <= {"string", "bool", "time"}:
            return left, right
        if kinds == {"time", "string"}:
            return self.as_time(left), self.as_time(right)
        if kinds == {"struct"} and op in ("=", "!=") and left.ty == right.ty:
            return left, right
        raise PqlError(f"cannot compare {left.ty.noun} with {right.ty.noun} using {op}")

    def compare(self, op: str, left: V, right: V) -> str:
        if "null" in (left.ty.kind, right.ty.kind):
            return "false"
        left, right = self.comparable(op, left, right)
        return _total(f"({left.sql} {'<>' if op == '!=' else op} {right.sql})")

    def in_(self, node: pql.In, env: Env) -> str:
        subject = self.value(node.left, env)
        if isinstance(node.right, pql.ArrayLit):
            items = [self.value(item, env) for item in node.right.items]
            items = [item for item in items if item.ty.kind != "null"]
            if subject.ty.kind == "null":
                return "false"
            for item in items:
                self.comparable("in", subject, item)
            if not items:
                return "false" if not node.negated else f"({subject.sql} IS NOT NULL)"
            listed = ", ".join(item.sql for item in items)
            return _total(f"({subject.sql} {'NOT IN' if node.negated else 'IN'} ({listed}))")
        values = self.value(node.right, env)
        if "null" in (subject.ty.kind, values.ty.kind):
            return "false"
        self.need_list(values, "in")
        self.comparable("in", subject, V("", values.ty.elem or NULL))
        found = f"coalesce(array_contains({values.sql}, {subject.sql}), false)"
        if node.negated:
            return f"({subject.sql} IS NOT NULL AND {values.sql} IS NOT NULL AND NOT {found})"
        return found

    def arith(self, node: pql.Arith, env: Env) -> V:
        result = self.number(self.value(node.first, env), node.rest[0][0])
        for op, operand_node in node.rest:
            operand = self.number(self.value(operand_node, env), op)
            if "null" in (result.ty.kind, operand.ty.kind):
                result = V("NULL", NULL)
            elif op in "/%":  # PQL: division by zero is null
                ty = FLOAT if op == "/" or FLOAT in (result.ty, operand.ty) else INT
                result = V(f"({result.sql} {op} NULLIF({operand.sql}, 0))", ty)
            else:
                ty = FLOAT if FLOAT in (result.ty, operand.ty) else INT
                result = V(f"({result.sql} {op} {operand.sql})", ty)
        return result

    def number(self, v: V, op: str) -> V:
        if v.ty.kind in NUMERIC or v.ty.kind == "null":
            return v
        raise PqlError(f"{op} needs numbers, not {v.ty.noun}")

    def string(self, v: V, what: str) -> V:
        if v.ty.kind in ("string", "null"):
            return v
        raise PqlError(f"{what} needs a string, not {v.ty.noun}")

    def need_list(self, v: V, what: str) -> None:
        if v.ty.kind != "list":
            raise PqlError(f"{what} needs an array, not {v.ty.noun}")

    def as_time(self, v: V) -> V:
        if v.ty.kind in ("time", "null"):
            return v
        if v.ty.kind == "string":
            return V(f"TRY_CAST({v.sql} AS {self.dialect.timestamp_type})", TIME)
        raise PqlError(f"expected a date-time, not {v.ty.noun}")

    # ---- functions and methods ---------------------------------------------------------------------------------

    def call(self, node: pql.Call, env: Env) -> V:
        name, args = node.name, node.args
        if name == "date":
            parts = [a.value for a in args if isinstance(a, pql.Lit) and type(a.value) is int]
            if len(parts) != 3 or len(args) != 3:
                raise PqlError("date() needs three whole numbers: date(year, month, day)")
            return self.literal(self.date(parts))
        now = timeunits.utc(self.now)
        constants = {"currentMonth": now.month, "currentYear": now.year, "currentDayOfMonth": now.day}
        if name in constants:
            if args:
                raise PqlError(f"{name}() takes no arguments")
            return self.literal(constants[name])
        if name == "inSegment":
            if len(args) != 1 or not isinstance(args[0], pql.Lit) or not isinstance(args[0].value, str):
                raise PqlError('inSegment() needs one segment id text: inSegment("id")')
            return V(self.in_segment(args[0].value), BOOL, True)
        if name == "if":
            if len(args) != 3:
                raise PqlError("if() needs three arguments: if(condition, then, else)")
            then, other = self.value(args[1], env), self.value(args[2], env)
            if "null" not in (then.ty.kind, other.ty.kind):
                self.comparable("if", then, other)
            ty = then.ty if then.ty.kind != "null" else other.ty
            return V(f"(CASE WHEN {self.condition(args[0], env)} THEN {then.sql} ELSE {other.sql} END)", ty)
        raise PqlError(f"{name}() is not supported")

    def date(self, parts: list[int]) -> datetime:
        try:
            return datetime(parts[0], parts[1], parts[2], tzinfo=timeunits.UTC)
        except ValueError as err:
            raise PqlError(f"date({parts[0]}, {parts[1]}, {parts[2]}) is not a date: {err}") from None

    def in_segment(self, segment_id: str) -> str:
        membership = self.root.field("segmentMembership")
        if membership is None:
            return "false"
        ups = membership.elem if membership.kind == "map" else None
        entry = ups.elem if ups is not None and ups.kind == "map" else None
        if entry is None or entry.kind != "struct" or entry.field("status") != STRING:
            raise PqlError("segmentMembership is not a map of namespace to segment id to {status}")
        ref = (f"{self.dialect.ident(self.alias)}.{self.dialect.ident('segmentMembership')}"
               f"[{self.dialect.string('ups')}][{self.dialect.string(segment_id)}].{self.dialect.ident('status')}")
        return _total(f"({ref} IN ('realized', 'existing'))")

    def method(self, node: pql.Method, env: Env) -> V:
        name, args = node.name, node.args
        if name == "count" and isinstance(node.obj, pql.Select):
            self.arity(node, 0)
            return V(self.count(node.obj.binds, env), INT)
        obj = self.value(node.obj, env)
        if name in ("isNull", "isNotNull"):
            self.arity(node, 0)
            if obj.ty.kind == "null":
                return TRUE if name == "isNull" else FALSE
            return V(f"({obj.sql} IS {'NOT ' if name == 'isNotNull' else ''}NULL)", BOOL, True)
        if name in STRING_METHODS:
            return V(self.string_method(node, obj, env), BOOL, True)
        if name in ("getMonth", "getYear", "getDayOfMonth"):
            self.arity(node, 0)
            when = self.as_time(obj)
            fn = {"getMonth": "month", "getYear": "year", "getDayOfMonth": "day"}[name]
            return V("NULL", NULL) if when.ty.kind == "null" else V(f"{fn}({when.sql})", INT)
        if name == "get":
            self.arity(node, 1)
            key = self.string(self.value(args[0], env), "get")
            if obj.ty.kind == "null" or key.ty.kind == "null":
                return V("NULL", NULL)
            if obj.ty.kind != "map":
                raise PqlError(f"get needs a map, not {obj.ty.noun}")
            return V(f"{obj.sql}[{key.sql}]", obj.ty.elem or NULL)
        if name in ("count", "sum", "average", "min", "max", "includes", "intersects"):
            return self.array_method(node, obj, env)
        raise PqlError(f"method {name}() is not supported")

    def arity(self, node: pql.Method, *allowed: int) -> None:
        if len(node.args) not in allowed:
            raise PqlError(f"{node.name}() takes {' or '.join(map(str, allowed))} argument(s), not {len(node.args)}")

    def string_method(self, node: pql.Method, obj: V, env: Env) -> str:
        name = node.name
        self.arity(node, 1) if name == "matches" else self.arity(node, 1, 2)
        text = self.string(obj, name)
        arg = self.string(self.value(node.args[0], env), name)
        sensitive = True
        if len(node.args) == 2:
            flag = node.args[1]
            if not isinstance(flag, pql.Lit) or not isinstance(flag.value, bool):
                raise PqlError(f"the case-sensitivity of {name}() must be true or false")
            sensitive = flag.value
        if "null" in (text.ty.kind, arg.ty.kind):
            return "false"
        if name == "matches":
            return _total(self.dialect.regex(text.sql, arg.sql))
        s, p = (text.sql, arg.sql) if sensitive else (f"lower({text.sql})", f"lower({arg.sql})")
        positive = {"startsWith": f"(left({s}, length({p})) = {p})", "endsWith": f"(right({s}, length({p})) = {p})",
                    "contains": f"(instr({s}, {p}) > 0)", "equals": f"({s} = {p})"}
        base = STRING_METHODS[name]
        if base == name:
            return _total(positive[name])
        if name == "notEqualTo":
            return _total(f"({s} <> {p})")
        return f"({s} IS NOT NULL AND {p} IS NOT NULL AND NOT {_total(positive[base])})"

    def array_method(self, node: pql.Method, items: V, env: Env) -> V:
        name, args = node.name, node.args
        if items.ty.kind == "null":
            return {"count": V("0", INT), "sum": V("0E0", FLOAT), "includes": FALSE,
                    "intersects": FALSE}.get(name, V("NULL", NULL))
        self.need_list(items, f"{name}()")
        elem = items.ty.elem or NULL
        if name == "count":
            self.arity(node, 0)
            return V(f"(CASE WHEN {items.sql} IS NULL THEN 0 ELSE {self.dialect.size(items.sql)} END)", INT)
        if name == "includes":
            self.arity(node, 1)
            return V(self.in_(pql.In(False, args[0], node.obj), env), BOOL, True)
        if name == "intersects":
            self.arity(node, 1)
            other = self.array_arg(args[0], env)
            if other.ty.kind == "null":
                return FALSE
            self.comparable("intersects", V("", elem), V("", other.ty.elem or NULL))
            return V(_total(self.dialect.overlaps(items.sql, other.sql)), BOOL, True)
        self.arity(node, 0, 1)
        var = self.fresh()
        value = V(var, elem) if not args else self.value(args[0], env.push(Frame(None, var, elem)))
        return self.aggregate(name, items.sql, var, value)

    def array_arg(self, node: pql.Node, env: Env) -> V:
        if not isinstance(node, pql.ArrayLit):
            v = self.value(node, env)
            if v.ty.kind not in ("list", "null"):
                raise PqlError(f"expected an array, not {v.ty.noun}")
            return v
        items = [self.value(item, env) for item in node.items]
        kinds = {item.ty.kind for item in items} - {"null"}
        if len(kinds - set(NUMERIC)) > 1 or kinds & set(NUMERIC) and kinds - set(NUMERIC):
            raise PqlError("an array literal mixes types")
        elem = FLOAT if "float" in kinds else (Ty(kinds.pop()) if kinds else NULL)
        if not items or elem.kind == "null":
            return V("NULL", NULL)
        return V(self.dialect.array([i.sql for i in items if i.ty.kind != "null"]), Ty("list", elem=elem))

    def aggregate(self, func: str, items: str, var: str, value: V) -> V:
        """sum (0 when nothing to add), average, min, max of value over the items bound to var."""
        if value.ty.kind == "null":
            return V("0E0", FLOAT) if func == "sum" else V("NULL", NULL)
        if func != "min" and func != "max" or value.ty.kind not in ("string", "time"):
            self.number(value, func)
        values = self.dialect.transform(items, var, value.sql)
        total = f"coalesce({self.dialect.sum(values, self.fresh(), self.fresh())}, 0E0)"
        if func == "sum":
            return V(total, FLOAT)
        if func == "average":
            item = self.fresh()
            present = self.dialect.size(self.dialect.filter(values, item, f"{item} IS NOT NULL"))
            return V(f"({total} / NULLIF({present}, 0))", FLOAT)
        return V(getattr(self.dialect, func)(values), value.ty)

    # ---- select, quantifiers -----------------------------------------------------------------------------------

    def bound(self, bind: pql.Bind, env: Env) -> tuple[str | None, str, Env]:
        """The SQL list of the items that pass the bind's where (None when the source is missing)."""
        source = self.value(bind.source, env)
        var = self.fresh()
        if source.ty.kind == "null":
            return None, var, env
        self.need_list(source, f'"{bind.var} from"')
        inner = env.push(Frame(bind.var, var, source.ty.elem or NULL))
        if bind.cond is None:
            return source.sql, var, inner
        return self.dialect.filter(source.sql, var, self.condition(bind.cond, inner)), var, inner

    def count(self, binds: tuple[pql.Bind, ...], env: Env) -> str:
        """Tuples of items (one per bind, later binds may use earlier ones) passing every where."""
        items, var, inner = self.bound(binds[0], env)
        if items is None:
            return "0"
        if len(binds) == 1:
            return f"coalesce({self.dialect.size(items)}, 0)"
        per_item = self.dialect.transform(items, var, self.count(binds[1:], inner))
        return f"CAST(coalesce({self.dialect.sum(per_item, self.fresh(), self.fresh())}, 0) AS BIGINT)"

    def quantifier(self, kind: str, binds: tuple[pql.Bind, ...], env: Env) -> str:
        if kind == "exists":
            return f"({self.count(binds, env)} > 0)"
        if len(binds) != 1:
            raise PqlError("forall over several bindings is not supported")
        bind = binds[0]
        source = self.value(bind.source, env)
        if source.ty.kind == "null":
            return "true"
        self.need_list(source, f'"{bind.var} from"')
        var = self.fresh()
        inner = env.push(Frame(bind.var, var, source.ty.elem or NULL))
        test = self.condition(bind.cond, inner) if bind.cond is not None else "true"
        failing = self.dialect.size(self.dialect.filter(source.sql, var, f"NOT {test}"))
        return f"coalesce({failing} = 0, true)"

    # ---- time --------------------------------------------------------------------------------------------------

    def time_word(self, word: str) -> datetime:
        today = timeunits.day_start(timeunits.utc(self.now))
        return {"now": timeunits.utc(self.now), "today": today, "yesterday": timeunits.add(today, -1, "day"),
                "tomorrow": timeunits.add(today, 1, "day")}[word]

    def span(self, node: pql.Node, env: Env) -> tuple[datetime, datetime] | V:
        """A time word, date() or this/last/next unit as a [start, end) period; `now` and fields as points."""
        match node:
            case pql.TimeWord("now"):  # a point: a period that ends where it starts
                return self.time_word("now"), self.time_word("now")
            case pql.TimeWord(word):
                start = self.time_word(word)
                return start, timeunits.add(start, 1, "day")
            case pql.Period(rel, unit):
                return timeunits.period(rel, unit, timeunits.utc(self.now))
            case pql.Call("date"):
                start = self.date([a.value for a in node.args]) if len(node.args) == 3 else None
                if start is None:
                    self.call(node, env)  # raises the arity error
                return start, timeunits.add(start, 1, "day")
        point = self.as_time(self.value(node, env))
        return point

    def occurs(self, node: pql.Occurs, env: Env) -> str:
        subject = self.as_time(self.value(node.subject, env))
        ref = self.span(node.ref, env)
        if subject.ty.kind == "null" or isinstance(ref, V) and ref.ty.kind == "null":
            return "false"
        t, lit = subject.sql, self.literal
        if node.kind == "between":
            upper = self.span(node.ref2, env) if node.ref2 is not None else ref
            if isinstance(upper, V) and upper.ty.kind == "null":
                return "false"
            low = ref.sql if isinstance(ref, V) else lit(ref[0]).sql
            if isinstance(upper, V) or upper[0] == upper[1]:
                high = f"{t} <= {upper.sql if isinstance(upper, V) else lit(upper[0]).sql}"
            else:
                high = f"{t} < {lit(upper[1]).sql}"
            return _total(f"({low} <= {t} AND {high})")
        if node.kind == "amount":
            return self.occurs_amount(node, t, ref)
        if not isinstance(ref, V) and ref[0] == ref[1]:
            ref = lit(ref[0])
        if node.kind == "on":
            if isinstance(ref, V):
                return _total(f"({t} = {ref.sql})")
            return _total(f"({lit(ref[0]).sql} <= {t} AND {t} < {lit(ref[1]).sql})")
        if node.kind == "direction":
            if isinstance(ref, V):
                return _total(f"({t} {'<' if node.direction == 'before' else '>'} {ref.sql})")
            if node.direction == "before":
                return _total(f"({t} < {lit(ref[0]).sql})")
        return _total(f"({t} >= {lit(ref[1]).sql})")

    def occurs_amount(self, node: pql.Occurs, t: str, ref: tuple[datetime, datetime] | V) -> str:
        """`op N unit before|after R`, R a point or the start of a period; bounds folded when R is a literal."""
        n, unit, op = node.amount, node.unit, node.op
        sign = -1 if node.direction == "before" else 1
        if op == "!=":
            raise PqlError("occurs != is not supported")
        if op == "=":
            if isinstance(ref, V):
                raise PqlError("occurs = N units before/after a field is not supported (only now, today, date())")
            anchor = ref[0] if not isinstance(ref, V) else None
            start = timeunits.add(timeunits.truncate(anchor, unit), sign * n, unit)
            return _total(f"({self.literal(start).sql} <= {t} AND {t} < "
                          f"{self.literal(timeunits.add(start, 1, unit)).sql})")
        if isinstance(ref, V):
            r = ref.sql
            shifted = f"({r} {'-' if sign < 0 else '+'} {timeunits.sql_interval(n, unit)})"
        else:
            r = self.literal(ref[0]).sql
            shifted = self.literal(timeunits.add(ref[0], sign * n, unit)).sql
        if sign < 0:
            text = {"<=": f"({shifted} <= {t} AND {t} <= {r})", "<": f"({shifted} < {t} AND {t} <= {r})",
                    ">": f"({t} < {shifted})", ">=": f"({t} <= {shifted})"}[op]
        else:
            text = {"<=": f"({r} <= {t} AND {t} <= {shifted})", "<": f"({r} <= {t} AND {t} < {shifted})",
                    ">": f"({t} > {shifted})", ">=": f"({t} >= {shifted})"}[op]
        return _total(text)


STRING_METHODS = {"startsWith": "startsWith", "endsWith": "endsWith", "contains": "contains", "equals": "equals",
                  "doesNotStartWith": "startsWith", "doesNotEndWith": "endsWith", "doesNotContain": "contains",
                  "notEqualTo": "equals", "matches": "matches"}


def _total(sql: str) -> str:
    return f"coalesce({sql}, false)"


def _balanced(parts: list[str], op: str) -> str:
    """`a OP b OP c ...` as a balanced tree, so a long chain nests log2(n) deep in the engines' parsers."""
    while len(parts) > 1:
        parts = [f"({parts[i]} {op} {parts[i + 1]})" if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


_REGEX_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def like_regex(pattern: str) -> str:
    """PQL like (% any run, _ one character) as an anchored regex both RE2 and java.util.regex read."""
    out = ["(?s)^"]
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else _REGEX_SPECIAL.sub(r"\\\1", ch))
    return "".join(out) + "$"


def compile_pql(expression: str | pql.Node, schema: pa.Schema, now: datetime, dialect: str = "duckdb",
                alias: str = "profile") -> str:
    """One SQL boolean (never NULL) over `alias`, a row of a table with this schema; now is the evaluation instant."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}")
    node = pql.parse(expression) if isinstance(expression, str) else expression
    root = Ty("struct", tuple((f.name, arrow_type(f.type)) for f in schema))
    compiler = Compiler(root, timeunits.utc(now), DIALECTS[dialect], alias)
    try:
        return compiler.condition(node, Env())
    except RecursionError:
        raise PqlError(f"expression nests deeper than {pql.MAX_NESTING} levels") from None
