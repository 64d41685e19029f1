"""The time half of the compiler: now/today/date() literals and `occurs` windows, bounds folded in Python when
the reference is a literal (deterministic on every engine), INTERVAL arithmetic when it is a field."""

from __future__ import annotations

from datetime import datetime

from upstack.segments import nodes, timeunits
from upstack.segments.pql import PqlError
from upstack.segments.values import Env, V, total


class TimeCompiling:
    """Mixed into Compiler, whose value/literal/as_time/call/date it uses."""

    now: datetime

    def time_word(self, word: str) -> datetime:
        today = timeunits.day_start(timeunits.utc(self.now))
        return {"now": timeunits.utc(self.now), "today": today, "yesterday": timeunits.add(today, -1, "day"),
                "tomorrow": timeunits.add(today, 1, "day")}[word]

    def span(self, node: nodes.Node, env: Env) -> tuple[datetime, datetime] | V:
        """A time word, date() or this/last/next unit as a [start, end) period; `now` and fields as points."""
        match node:
            case nodes.TimeWord("now"):  # a point: a period that ends where it starts
                return self.time_word("now"), self.time_word("now")
            case nodes.TimeWord(word):
                start = self.time_word(word)
                return start, timeunits.add(start, 1, "day")
            case nodes.Period(rel, unit):
                return timeunits.period(rel, unit, timeunits.utc(self.now))
            case nodes.Call("date"):
                start = self.date(node)
                return start, timeunits.add(start, 1, "day")
        return self.as_time(self.value(node, env))

    def occurs(self, node: nodes.Occurs, env: Env) -> str:
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
            return total(f"({low} <= {t} AND {high})")
        if node.kind == "amount":
            return self.occurs_amount(node, t, ref)
        if not isinstance(ref, V) and ref[0] == ref[1]:
            ref = lit(ref[0])
        if node.kind == "on":
            if isinstance(ref, V):
                return total(f"({t} = {ref.sql})")
            return total(f"({lit(ref[0]).sql} <= {t} AND {t} < {lit(ref[1]).sql})")
        # direction: before a period is before its start, after it is from its end on
        if isinstance(ref, V):
            return total(f"({t} {'<' if node.direction == 'before' else '>'} {ref.sql})")
        if node.direction == "before":
            return total(f"({t} < {lit(ref[0]).sql})")
        return total(f"({t} >= {lit(ref[1]).sql})")

    def occurs_amount(self, node: nodes.Occurs, t: str, ref: tuple[datetime, datetime] | V) -> str:
        """`op N unit before|after R`, R a point or the start of a period; bounds folded when R is a literal."""
        n, unit, op = node.amount, node.unit, node.op
        sign = -1 if node.direction == "before" else 1
        if op == "!=":
            raise PqlError("occurs != is not supported")
        if op == "=":
            if isinstance(ref, V):
                raise PqlError("occurs = N units before/after a field is not supported (only now, today, date())")
            start = timeunits.add(timeunits.truncate(ref[0], unit), sign * n, unit)
            return total(f"({self.literal(start).sql} <= {t} AND {t} < "
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
        return total(text)
