"""Compile a PQL AST to one SQL boolean expression over a row that is one merged profile (DuckDB or Spark SQL).

Null rule: every predicate is made two-valued where it stands (`coalesce(p, false)`), so null reaches the nearest
boolean position and becomes false there; `not` of a false predicate is then true, as PQL has it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from upstack.segments import nodes, pql, timeunits
from upstack.segments.dialect import DIALECTS, Dialect
from upstack.segments.pql import PqlError
from upstack.segments.regex import check_regex, like_regex
from upstack.segments.timeexpr import TimeCompiling
from upstack.segments.values import (
    BOOL,
    FALSE,
    FLOAT,
    INT,
    NULL,
    NUMERIC,
    STRING,
    TIME,
    TRUE,
    Env,
    Frame,
    Ty,
    V,
    arrow_type,
    balanced,
    bounded,
    total,
)


@dataclass
class Compiler(TimeCompiling):
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
            if not -(1 << 63) <= value < 1 << 63:
                raise PqlError(f"whole number {value} is out of range (64 bits)")
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

    def value(self, node: nodes.Node, env: Env) -> V:
        return bounded(self._value(node, env))

    def condition(self, node: nodes.Node, env: Env) -> str:
        """A two-valued SQL boolean (never NULL)."""
        return bounded(self._condition(node, env))

    def _value(self, node: nodes.Node, env: Env) -> V:
        match node:
            case nodes.Lit(value):
                return self.literal(value)
            case nodes.ArrayLit():
                raise PqlError("an array literal can only be the right side of in/notIn or an argument")
            case nodes.Name(name):
                return self.name(name, env)
            case nodes.Dollar():
                return V(self.dialect.ident(self.alias), self.root)
            case nodes.Member(obj, name):
                return self.member(self.value(obj, env), name)
            case nodes.TimeWord(word):
                return self.literal(self.time_word(word))
            case nodes.Period():
                raise PqlError("this/last/next <unit> is only a time after occurs")
            case nodes.Arith():
                return self.arith(node, env)
            case nodes.Negate(expr):
                operand = self.number(self.value(expr, env), "-")
                if operand.ty.kind != "int":
                    return operand if operand.ty.kind == "null" else V(f"(- {operand.sql})", operand.ty)
                return V(self.dialect.checked("-", "CAST(0 AS BIGINT)", operand.sql), INT)
            case nodes.Call():
                return self.call(node, env)
            case nodes.Method():
                return self.method(node, env)
            case nodes.Filter(obj, cond):
                items = self.value(obj, env)
                if items.ty.kind == "null":
                    return items
                self.need_list(items, "[...]")
                var = self.fresh()
                test = self.condition(cond, env.push(Frame(None, var, items.ty.elem or NULL)))
                return V(self.dialect.filter(items.sql, var, test), items.ty)
            case nodes.Let(name, value, body):
                return self.value(body, Env(env.frames, env.lets + ((name, self.value(value, env)),)))
            case nodes.Over(func, expr, bind):
                items, var, frame_env = self.bound(bind, env)
                if items is None:
                    return V("0E0", FLOAT) if func == "sum" else V("NULL", NULL)
                return self.aggregate(func, items, var, self.value(expr, frame_env))
            case _:  # a condition used as a value: a two-valued boolean
                return V(self.condition(node, env), BOOL, True)

    def _condition(self, node: nodes.Node, env: Env) -> str:
        match node:
            case nodes.BoolOp(op, items):
                return balanced([self.condition(item, env) for item in items], op.upper())
            case nodes.Not(expr):
                return f"(NOT {self.condition(expr, env)})"
            case nodes.Compare(op, left, right):
                return self.compare(op, self.value(left, env), self.value(right, env))
            case nodes.In():
                return self.in_(node, env)
            case nodes.Like(subject, pattern):
                text = self.string(self.value(subject, env), "like")
                if text.ty.kind == "null":
                    return "false"
                return total(self.dialect.regex(text.sql, self.dialect.string(like_regex(pattern))))
            case nodes.Occurs():
                return self.occurs(node, env)
            case nodes.Select(binds):
                return f"({self.count(binds, env)} > 0)"
            case nodes.Quant(kind, binds):
                return self.quantifier(kind, binds, env)
            case nodes.Let(name, value, body):
                return self.condition(body, Env(env.frames, env.lets + ((name, self.value(value, env)),)))
        return self.truth(self.value(node, env))

    def truth(self, v: V) -> str:
        if v.ty.kind == "bool":
            return v.sql if v.total else total(v.sql)
        if v.ty.kind == "null":
            return "false"
        if v.ty.kind == "list":  # a non-empty (filtered) array is true
            return total(f"({self.dialect.size(v.sql)} > 0)")
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
        return total(f"({left.sql} {'<>' if op == '!=' else op} {right.sql})")

    def in_(self, node: nodes.In, env: Env) -> str:
        subject = self.value(node.left, env)
        if isinstance(node.right, nodes.ArrayLit):
            items = [self.value(item, env) for item in node.right.items]
            items = [item for item in items if item.ty.kind != "null"]
            if subject.ty.kind == "null":
                return "false"
            for item in items:
                self.comparable("in", subject, item)
            if not items:
                return "false" if not node.negated else f"({subject.sql} IS NOT NULL)"
            listed = ", ".join(item.sql for item in items)
            return total(f"({subject.sql} {'NOT IN' if node.negated else 'IN'} ({listed}))")
        values = self.value(node.right, env)
        if "null" in (subject.ty.kind, values.ty.kind):
            return "false"
        self.need_list(values, "in")
        self.comparable("in", subject, V("", values.ty.elem or NULL))
        found = f"coalesce(array_contains({values.sql}, {subject.sql}), false)"
        if node.negated:
            return f"({subject.sql} IS NOT NULL AND {values.sql} IS NOT NULL AND NOT {found})"
        return found

    def arith(self, node: nodes.Arith, env: Env) -> V:
        result = self.number(self.value(node.first, env), node.rest[0][0])
        for op, operand_node in node.rest:
            operand = self.number(self.value(operand_node, env), op)
            if "null" in (result.ty.kind, operand.ty.kind):
                result = V("NULL", NULL)
            elif op in "/%":  # PQL: division by zero is null
                ty = FLOAT if op == "/" or FLOAT in (result.ty, operand.ty) else INT
                result = V(f"({result.sql} {op} NULLIF({operand.sql}, 0))", ty)
            elif FLOAT in (result.ty, operand.ty):
                result = V(f"({result.sql} {op} {operand.sql})", FLOAT)
            else:  # BIGINT arithmetic; an overflow is null, like /0, instead of failing the whole evaluation
                result = V(self.dialect.checked(op, f"CAST({result.sql} AS BIGINT)", operand.sql), INT)
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

    def call(self, node: nodes.Call, env: Env) -> V:
        name, args = node.name, node.args
        if name == "date":
            return self.literal(self.date(node))
        now = timeunits.utc(self.now)
        constants = {"currentMonth": now.month, "currentYear": now.year, "currentDayOfMonth": now.day}
        if name in constants:
            if args:
                raise PqlError(f"{name}() takes no arguments")
            return self.literal(constants[name])
        if name == "inSegment":
            if len(args) != 1 or not isinstance(args[0], nodes.Lit) or not isinstance(args[0].value, str):
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

    def date(self, node: nodes.Call) -> datetime:
        """date(y, m, d): midnight UTC of that day."""
        parts = [a.value for a in node.args if isinstance(a, nodes.Lit) and type(a.value) is int]
        if len(parts) != 3 or len(node.args) != 3:
            raise PqlError("date() needs three whole numbers: date(year, month, day)")
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
        return total(f"({ref} IN ('realized', 'existing'))")

    def method(self, node: nodes.Method, env: Env) -> V:
        name, args = node.name, node.args
        if name == "count" and isinstance(node.obj, nodes.Select):
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

    def arity(self, node: nodes.Method, *allowed: int) -> None:
        if len(node.args) not in allowed:
            raise PqlError(f"{node.name}() takes {' or '.join(map(str, allowed))} argument(s), not {len(node.args)}")

    def string_method(self, node: nodes.Method, obj: V, env: Env) -> str:
        name = node.name
        self.arity(node, 1) if name == "matches" else self.arity(node, 1, 2)
        if name == "matches":
            check_regex(node.args[0])
        text = self.string(obj, name)
        arg = self.string(self.value(node.args[0], env), name)
        sensitive = True
        if len(node.args) == 2:
            flag = node.args[1]
            if not isinstance(flag, nodes.Lit) or not isinstance(flag.value, bool):
                raise PqlError(f"the case-sensitivity of {name}() must be true or false")
            sensitive = flag.value
        if "null" in (text.ty.kind, arg.ty.kind):
            return "false"
        if name == "matches":
            return total(self.dialect.regex(text.sql, arg.sql))
        s, p = (text.sql, arg.sql) if sensitive else (f"lower({text.sql})", f"lower({arg.sql})")
        positive = {"startsWith": f"(left({s}, length({p})) = {p})", "endsWith": f"(right({s}, length({p})) = {p})",
                    "contains": f"(instr({s}, {p}) > 0)", "equals": f"({s} = {p})"}
        base = STRING_METHODS[name]
        if base == name:
            return total(positive[name])
        if name == "notEqualTo":
            return total(f"({s} <> {p})")
        return f"({s} IS NOT NULL AND {p} IS NOT NULL AND NOT {total(positive[base])})"

    def array_method(self, node: nodes.Method, items: V, env: Env) -> V:
        name, args = node.name, node.args
        if items.ty.kind == "null":
            return {"count": V("0", INT), "sum": V("0E0", FLOAT), "includes": FALSE,
                    "intersects": FALSE}.get(name, V("NULL", NULL))
        self.need_list(items, f"{name}()")
        elem = items.ty.elem or NULL
        if name == "count":
            self.arity(node, 0)
            return V(f"coalesce({self.dialect.size(items.sql)}, 0)", INT)
        if name == "includes":
            self.arity(node, 1)
            return V(self.in_(nodes.In(False, args[0], node.obj), env), BOOL, True)
        if name == "intersects":
            self.arity(node, 1)
            other = self.array_arg(args[0], env)
            if other.ty.kind == "null":
                return FALSE
            self.comparable("intersects", V("", elem), V("", other.ty.elem or NULL))
            return V(total(self.dialect.overlaps(items.sql, other.sql)), BOOL, True)
        self.arity(node, 0, 1)
        var = self.fresh()
        value = V(var, elem) if not args else self.value(args[0], env.push(Frame(None, var, elem)))
        return self.aggregate(name, items.sql, var, value)

    def array_arg(self, node: nodes.Node, env: Env) -> V:
        if not isinstance(node, nodes.ArrayLit):
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

    def bound(self, bind: nodes.Bind, env: Env) -> tuple[str | None, str, Env]:
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

    def count(self, binds: tuple[nodes.Bind, ...], env: Env) -> str:
        """Tuples of items (one per bind, later binds may use earlier ones) passing every where."""
        if len(binds) > MAX_BINDS:
            raise PqlError(f"more than {MAX_BINDS} bindings in one select")
        items, var, inner = self.bound(binds[0], env)
        if items is None:
            return "0"
        if len(binds) == 1:
            return f"coalesce({self.dialect.size(items)}, 0)"
        per_item = self.dialect.transform(items, var, self.count(binds[1:], inner))
        return f"CAST(coalesce({self.dialect.sum(per_item, self.fresh(), self.fresh())}, 0) AS BIGINT)"

    def quantifier(self, kind: str, binds: tuple[nodes.Bind, ...], env: Env) -> str:
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


MAX_BINDS = 8

STRING_METHODS = {"startsWith": "startsWith", "endsWith": "endsWith", "contains": "contains", "equals": "equals",
                  "doesNotStartWith": "startsWith", "doesNotEndWith": "endsWith", "doesNotContain": "contains",
                  "notEqualTo": "equals", "matches": "matches"}


def compile_pql(expression: str | nodes.Node, schema: pa.Schema, now: datetime, dialect: str = "duckdb",
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
