"""Property: on random small profiles, the compiled SQL run by DuckDB agrees with the reference interpreter for
random expressions over a fixed small schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.segments.reference import evaluate
from upstack.segments.evaluate import qualifying

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
EVENT = pa.struct([("k", pa.string()), ("v", pa.int64()), ("t", TS)])
SCHEMA = pa.schema([("n", pa.int64()), ("x", pa.float64()), ("s", pa.string()), ("flag", pa.bool_()),
                    ("o", pa.struct([("a", pa.int64()), ("s", pa.string())])), ("tags", pa.list_(pa.string())),
                    ("ev", pa.list_(EVENT))])

TEXT = st.text(alphabet="abAB.%_", max_size=4)
SMALL = st.integers(-4, 4)
INSTANTS = [NOW, NOW - timedelta(hours=30), NOW - timedelta(days=2, seconds=1), NOW - timedelta(days=9),
            NOW - timedelta(days=40), datetime(2024, 6, 14, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC),
            NOW + timedelta(hours=2)]


def _maybe(strategy):
    return st.none() | strategy


EVENTS = st.fixed_dictionaries({"k": _maybe(st.sampled_from(["p", "q"])), "v": _maybe(SMALL),
                                "t": _maybe(st.sampled_from(INSTANTS))})
PROFILE = st.fixed_dictionaries({
    "n": _maybe(SMALL), "x": _maybe(st.sampled_from([-1.5, 0.0, 2.25, 3.0])), "s": _maybe(TEXT),
    "flag": _maybe(st.booleans()),
    "o": _maybe(st.fixed_dictionaries({"a": _maybe(SMALL), "s": _maybe(TEXT)})),
    "tags": _maybe(st.lists(_maybe(st.sampled_from(["a", "b", "c"])), max_size=3)),
    "ev": _maybe(st.lists(EVENTS, max_size=3)),
})

INT_ATOMS = st.sampled_from(["n", "o.a", "-1", "0", "2", "ev.count()", "tags.count()", "x",
                             '(select X from ev where X.k = "p").count()', 'ev[v > 0].count()',
                             "(sum X.v over X from ev where X.k = \"q\")", "ev.sum(v)", "ev.max(v)", "ev.min(v)",
                             "ev.average(v)", "currentDayOfMonth()"])
NUMBERS = st.one_of(INT_ATOMS, st.builds(lambda a, op, b: f"({a} {op} {b})", INT_ATOMS,
                                         st.sampled_from(["+", "-", "*", "/", "%"]), INT_ATOMS))
COMPARE = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
STRINGS = st.sampled_from(["s", "o.s", '"a"', '"Ab"', '""', '"a."'])
FLAG = st.sampled_from(["", ", false", ", true"])
WINDOWS = st.sampled_from(["<= 2 days before now", "> 1 day before today", "< 30 hours before now", "this week",
                           "last month", "= 1 day before today", "before today", "after yesterday", "today",
                           "between date(2024, 6, 1) and today", "<= 3 hours after date(2024, 6, 14)",
                           ">= 1 week before now", "on date(2024, 6, 14)", "next hour"])

ATOMS = st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", NUMBERS, COMPARE, NUMBERS),
    st.builds(lambda a, op, b: f"{a} {op} {b}", STRINGS, COMPARE, STRINGS),
    st.builds(lambda a, m, b, f: f"{a}.{m}({b}{f})", STRINGS,
              st.sampled_from(["startsWith", "endsWith", "contains", "doesNotStartWith", "doesNotEndWith",
                               "doesNotContain", "equals", "notEqualTo"]), STRINGS, FLAG),
    st.builds(lambda a, p: f'{a} like "{p}"', STRINGS, st.sampled_from(["a%", "%b", "_", "%.%", "A_"])),
    st.builds(lambda a, p: f'{a}.matches("{p}")', STRINGS, st.sampled_from(["^a", "b$", "(?i)ab", "a.b"])),
    st.builds(lambda a, neg, items: f"{a} {neg} [{items}]", NUMBERS, st.sampled_from(["in", "notIn"]),
              st.sampled_from(["1, 2", "0", "-1, 4, 2"])),
    st.builds(lambda a, neg: f"{a} {neg} tags", STRINGS, st.sampled_from(["in", "notIn"])),
    st.sampled_from(["flag", "n.isNull()", "o.isNotNull()", "o.s.isNull()", 'tags.includes("a")',
                     'tags.intersects(["a", "c"])', 'ev[k = "p"]', "select X from ev where X.v > 1",
                     'exists X from ev: X.k = "q"', "forall X from ev: X.v >= 0", "ev[t.isNull()]",
                     'select X from ev where X.k = "p", Y from ev where Y.v > X.v', "inSegment(\"a\")",
                     'if(flag, n, o.a) > 0', "t.isNull()", "n = currentMonth() - 6", "$1.n = $1.o.a",
                     "ev[k = s]", "ev[v = $1.n].count() = 1", 'tags[$1.s = "a"]',
                     "select X from ev where X.t.isNotNull(), Y from ev where Y.t occurs <= 1 day after X.t",
                     "select X from ev, Y from ev where X.t occurs before Y.t and X.k = Y.k",
                     "select X from ev where X.t.getDayOfMonth() = currentDayOfMonth()",
                     "exists X from ev: X.t occurs between last week and today",
                     "ev.min(t) < ev.max(t)", 'o.s.equals(s, false) or o.s.contains(s)',
                     'chain(ev, t, [A: WHAT(k = "p") WHEN(today)])', 'CHAIN(ev, t, [A: WHAT(k = "p"), B: WHAT(v > 0)])',
                     "chain(ev, t, [A: WHEN(<= 2 days before now) COUNT(2)])"]),
    st.builds(lambda w: f"select X from ev where X.t occurs {w}", WINDOWS),
    st.builds(lambda w: f"ev[t occurs {w}].count() > 1", WINDOWS),
    st.builds(lambda v, op, k: f"let V = {v} in V {op} {k}", NUMBERS, COMPARE, SMALL),
)
EXPRESSIONS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(st.builds(lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["and", "or"]),
                                      inner),
                            st.builds(lambda a: f"not ({a})", inner)),
    max_leaves=5)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(expression=EXPRESSIONS, profiles=st.lists(PROFILE, min_size=1, max_size=6))
def test_duckdb_agrees_with_the_reference(expression, profiles):
    table = pa.Table.from_pylist(profiles, schema=SCHEMA)
    compiled = qualifying(table, {"q": expression}, NOW)["q"].to_pylist()
    assert compiled == evaluate(expression, table.to_pylist(), NOW), expression
