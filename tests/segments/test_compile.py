"""The compiler: null rules, time windows at their boundaries, type errors and unsupported constructs, dialects."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from tests.segments.reference import evaluate
from upstack.segments.compile import compile_pql
from upstack.segments.evaluate import qualifying, select_text
from upstack.segments.pql import PqlError
from upstack.segments.regex import like_regex

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)  # a Saturday; this week began Monday 2024-06-10
TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema([("n", pa.int64()), ("x", pa.float64()), ("s", pa.string()), ("t", TS), ("d", pa.date32()),
                    ("ts_text", pa.string()), ("flag", pa.bool_()), ("tags", pa.list_(pa.string())),
                    ("o", pa.struct([("a", pa.int64())])), ("m", pa.map_(pa.string(), pa.int64()))])


def run(text: str, rows: list[dict]) -> list[bool]:
    """The DuckDB answers, checked against the reference interpreter on the same rows."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    answers = qualifying(table, {"q": text}, NOW)["q"].to_pylist()
    assert answers == evaluate(text, table.to_pylist(), NOW), text
    return answers


def at(*times: datetime) -> list[dict]:
    return [{"t": when} for when in times]


def test_null_becomes_false_where_it_stands_and_not_then_flips_it():
    rows = [{"n": 1, "s": "a"}, {"n": None, "s": None}]
    assert run("n = 1", rows) == [True, False]
    assert run("n != 1", rows) == [False, False]
    assert run("not (n = 1)", rows) == [False, True]
    assert run("n notIn [2, 3]", rows) == [True, False]
    assert run("not (n in [2, 3])", rows) == [True, True]
    assert run('s.doesNotContain("z")', rows) == [True, False]
    assert run('s.notEqualTo("z")', rows) == [True, False]
    assert run("n.isNull()", rows) == [False, True]
    assert run("flag or not (flag)", [{"flag": True}, {"flag": False}, {"flag": None}]) == [True, True, True]


def test_missing_fields_compile_to_null_and_never_match():
    assert run('nosuch.field = "x" or o.nosuch = 1', [{"o": {"a": 1}}]) == [False]
    assert run("nosuch.isNull() and not (nosuch.isNotNull())", [{}]) == [True]
    assert run("nosuch.count() = 0 and (sum X.a over X from nosuch) = 0", [{}]) == [True]
    assert "NULL" not in compile_pql("nosuch = 1", SCHEMA, NOW)  # decided at compile time: false


def test_division_by_zero_is_null_and_modulo_follows_the_dividend():
    rows = [{"n": 7}, {"n": 0}, {"n": -7}]
    assert run("10 / n > 1", rows) == [True, False, False]
    assert run("(10 / n).isNull()", rows) == [False, True, False]
    assert run("n % 4 = -3", rows) == [False, False, True]


def test_integer_overflow_is_null_and_literals_are_64_bit():
    rows = [{"n": 1 << 62}, {"n": 3}]
    assert run("n * 4 > 0 or (n * 4).isNull() and n > 100", rows) == [True, True]
    assert run("(n * 4).isNull()", rows) == [True, False]
    assert run("(-(n - n - n - n - 1)).isNull() and -n < 0", rows) == [True, False]
    assert run("100000 * 100000 = 10000000000 and n + 9223372036854775800 > 0", rows) == [False, True]
    with pytest.raises(PqlError, match="whole number 9223372036854775808 is out of range"):
        compile_pql("n = 9223372036854775808", SCHEMA, NOW)


def test_strings_like_and_case_sensitivity():
    rows = [{"s": "Hello.World"}, {"s": "hello world"}, {"s": "a\nb"}]
    assert run('s like "H%.W_rld"', rows) == [True, False, False]
    assert run('s like "a_b"', rows) == [False, False, True]  # _ matches a newline too
    assert run('s.startsWith("hello", false) and s.endsWith("WORLD", false)', rows) == [True, True, False]
    assert run('s.equals("hello world")', rows) == [False, True, False]
    assert run('s.contains(".")', rows) == [True, False, False]
    assert run('s.matches("o.W")', rows) == [True, False, False]
    assert like_regex("50%_(x)") == r"(?s)^50.*.\(x\)$"


def test_occurs_amount_windows_at_their_boundaries():
    edge, inside, outside = datetime(2024, 6, 12, 12, tzinfo=UTC), datetime(2024, 6, 13, tzinfo=UTC), \
        datetime(2024, 6, 12, 11, tzinfo=UTC)
    rows = at(edge, inside, outside, NOW, datetime(2024, 6, 16, tzinfo=UTC))
    assert run("t occurs <= 3 days before now", rows) == [True, True, False, True, False]
    assert run("t occurs < 3 days before now", rows) == [False, True, False, True, False]
    assert run("t occurs > 3 days before now", rows) == [False, False, True, False, False]
    assert run("t occurs >= 3 days before now", rows) == [True, False, True, False, False]
    assert run("t occurs <= 1 day after now", rows) == [False, False, False, True, True]


def test_occurs_calendar_periods():
    rows = at(datetime(2024, 6, 10, tzinfo=UTC), datetime(2024, 6, 9, 23, 59, tzinfo=UTC),
              datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 5, 31, tzinfo=UTC), datetime(2024, 6, 14, 8, tzinfo=UTC))
    assert run("t occurs this week", rows) == [True, False, False, False, True]
    assert run("t occurs last week", rows) == [False, True, True, False, False]
    assert run("t occurs last month", rows) == [False, False, False, True, False]
    assert run("t occurs = 1 day before today", rows) == [False, False, False, False, True]
    assert run("t occurs yesterday", rows) == [False, False, False, False, True]
    assert run("t occurs = 2 months before now", at(datetime(2024, 4, 30, tzinfo=UTC))) == [True]


def test_occurs_before_after_between_and_dates():
    rows = at(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 31, 23, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
    assert run("t occurs between date(2024, 1, 1) and date(2024, 1, 31)", rows) == [True, True, False]
    assert run("t occurs before date(2024, 1, 31)", rows) == [True, False, False]
    assert run("t occurs after date(2024, 1, 31)", rows) == [False, False, True]
    assert run("t occurs on date(2024, 1, 31)", rows) == [False, True, False]
    dates = [{"d": date(2024, 6, 12)}, {"d": date(2024, 6, 11)}, {"ts_text": "2024-06-12T05:00:00Z"}]
    assert run("d occurs = 3 days before today or ts_text occurs = 3 days before today", dates) == [True, False, True]
    assert run("d < date(2024, 6, 12)", dates) == [False, True, False]


def test_dates_parts_follow_utc_and_the_evaluation_instant():
    rows = at(datetime(2024, 6, 30, 23, 30, tzinfo=UTC), datetime(2023, 12, 1, tzinfo=UTC))
    assert run("t.getMonth() = currentMonth() and t.getDayOfMonth() = 30 and t.getYear() = currentYear()",
               rows) == [True, False]
    assert "2024-06-15 12:00:00" in compile_pql("t < now", SCHEMA, NOW)


def test_arrays_maps_and_if():
    rows = [{"tags": ["a", "b", None], "m": [("k", 5)]}, {"tags": [], "m": []}, {"tags": None, "m": None}]
    assert run('tags.includes("b")', rows) == [True, False, False]
    assert run('tags.intersects(["z", "a"])', rows) == [True, False, False]
    assert run("tags.count() = 3", rows) == [True, False, False]
    assert run("tags.count() = 0", rows) == [False, True, True]
    assert run('"z" notIn tags', rows) == [True, True, False]
    assert run('m.get("k") = 5 and m.k = 5', rows) == [True, False, False]
    assert run('if(tags.count() > 0, "full", "empty") = "empty"', rows) == [False, True, True]


@pytest.mark.parametrize(("text", "message"), [
    ("o = 1", "cannot compare an object with a number using ="),
    ('n = "1"', "cannot compare a number with a string using ="),
    ("o < o", "cannot compare an object with an object using <"),
    ("tags.a = 1", 'cannot read field "a" of an array'),
    ('s + 1 > 2', "+ needs numbers, not a string"),
    ("n.startsWith(1)", "startsWith needs a string, not a number"),
    ("n", "a number is not a condition"),
    ('s.startsWith("a", "yes")', "the case-sensitivity of startsWith() must be true or false"),
    ("n.count() > 1", "count() needs an array, not a number"),
    ('n in ["a"]', "cannot compare a number with a string using in"),
    ("s.regexGroup(1, 2)", "method regexGroup() is not supported"),
    ("age(s) > 3", "age() is not supported"),
    ("t occurs = 1 day before t", "occurs = N units before/after a field is not supported"),
    ("date(2024, 2, 30) < t", "date(2024, 2, 30) is not a date"),
    ("t occurs on date(2024, n, 1)", "date() needs three whole numbers: date(year, month, day)"),
    ("t < last week", 'unexpected "week" at line 1, column 10: expected an operator or the end of the expression'),
    ("forall X from tags, Y from tags: X = Y", "forall over several bindings is not supported"),
    ('inSegment(s)', 'inSegment() needs one segment id text'),
    ("s occurs before 3", "expected a date-time, not a number"),
    ('s.matches("(?<!a)b")', 'regular expression "(?<!a)b" uses lookaround'),
    ('s.matches("(a)\\\\1")', "regular expression"),
    ('s.matches("a(")', 'invalid regular expression "a(": missing ), unterminated subpattern'),
    ("s.matches(s)", "matches() needs a literal regular expression text"),
])
def test_type_errors_and_unsupported_constructs_are_pql_errors(text, message):
    with pytest.raises(PqlError, match="^" + re.escape(message)):
        compile_pql(text, SCHEMA, NOW)


def test_the_result_is_one_two_valued_boolean_on_each_dialect():
    duck = compile_pql('tags[true].count() > 0 and s = "it\'s \\\\"', SCHEMA, NOW)
    spark = compile_pql('tags[true].count() > 0 and s = "it\'s \\\\"', SCHEMA, NOW, "spark")
    assert "list_filter(" in duck and "lambda " in duck and "'it''s \\'" in duck
    assert "filter(" in spark and " -> " in spark and "`tags`" in spark and "'it\\'s \\\\'" in spark
    assert select_text(SCHEMA, {"a": "n = 1"}, NOW, "spark").startswith("SELECT coalesce((`profile`.`n` = 1)")
    with pytest.raises(ValueError, match="unknown dialect"):
        compile_pql("n = 1", SCHEMA, NOW, "oracle")


def test_nested_lets_cannot_blow_the_sql_up():
    text = "".join(f"let v{i} = v{i - 1} + v{i - 1} in " for i in range(1, 40)).replace("v0", "n") + "v39 > 1"
    with pytest.raises(PqlError, match="compiles to more than 1048576 characters of SQL"):
        compile_pql(text, SCHEMA, NOW)


def test_select_binds_are_bounded():
    text = "select " + ", ".join(f"X{i} from tags" for i in range(9))
    with pytest.raises(PqlError, match="more than 8 bindings in one select"):
        compile_pql(text, SCHEMA, NOW)
    assert compile_pql("select " + ", ".join(f"X{i} from tags" for i in range(8)), SCHEMA, NOW)


def test_a_long_or_chain_nests_logarithmically_and_runs():
    text = " or ".join(f"n = {i}" for i in range(3000))
    sql = compile_pql(text, SCHEMA, NOW)
    assert max_depth(sql) < 40
    assert run(text, [{"n": 2999}, {"n": 3000}]) == [True, False]


def max_depth(sql: str) -> int:
    depth = deepest = 0
    for ch in sql:
        depth += ch == "("
        depth -= ch == ")"
        deepest = max(deepest, depth)
    return deepest


def test_a_condition_compared_as_a_value_is_a_boolean_or_a_clean_error():
    """Found by fuzzing: `select X from a = 1` is `(select X from a) = 1`; comparing its boolean with a number
    answered an AttributeError instead of a PqlError."""
    import datetime

    import pyarrow as pa

    from upstack.segments.compile import compile_pql
    from upstack.segments.pql import PqlError

    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    with pytest.raises(PqlError, match="cannot compare a boolean with a number"):
        compile_pql("select X from a = 1", pa.schema([]), now)
    assert "= true" in compile_pql("(select X from xEvent where X.a = 1) = true", pa.schema([]), now)
