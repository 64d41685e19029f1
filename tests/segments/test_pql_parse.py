"""The PQL parser: AST shapes, error messages with positions, and bounded work on hostile input."""

from __future__ import annotations

import re
import time

import pytest

from upstack.segments import nodes
from upstack.segments.pql import PqlError, parse


def test_paths_literals_and_precedence():
    assert parse('$1.homeAddress.city = "Paris"') == nodes.Compare(
        "=", nodes.Member(nodes.Member(nodes.Dollar(), "homeAddress"), "city"), nodes.Lit("Paris"))
    assert parse("a = 1 or b = 2 and not c") == nodes.BoolOp("or", (
        nodes.Compare("=", nodes.Name("a"), nodes.Lit(1)),
        nodes.BoolOp("and", (nodes.Compare("=", nodes.Name("b"), nodes.Lit(2)), nodes.Not(nodes.Name("c"))))))
    assert parse("x = 1 + 2 * -3.5e1") == nodes.Compare("=", nodes.Name("x"), nodes.Arith(
        nodes.Lit(1), (("+", nodes.Arith(nodes.Lit(2), (("*", nodes.Negate(nodes.Lit(35.0))),))),)))
    assert parse("!(x)") == nodes.Not(nodes.Name("x"))
    assert parse("d = date(2024, 2, 29)") == nodes.Compare("=", nodes.Name("d"), nodes.Call(
        "date", (nodes.Lit(2024), nodes.Lit(2), nodes.Lit(29))))


def test_strings_unescape_and_keep_regex_backslashes():
    assert parse(r's = "a\"b\\c\u00e9\n"').right == nodes.Lit('a"b\\c\u00e9\n')
    assert parse(r"s.matches('^\d+$')").args == (nodes.Lit(r"^\d+$"),)


def test_keywords_are_names_after_a_dot_and_time_words_are_whole_words():
    assert parse("a.last.sum.now = 1").left == nodes.Member(nodes.Member(nodes.Member(nodes.Name("a"), "last"), "sum"), "now")
    assert parse("nowhere = today").right == nodes.TimeWord("today")
    assert parse("nowhere = today").left == nodes.Name("nowhere")


def test_occurs_forms():
    assert parse("t occurs <= 3 days before now") == nodes.Occurs(
        nodes.Name("t"), "amount", nodes.TimeWord("now"), op="<=", amount=3, unit="day", direction="before")
    assert parse("t occurs = 1 century after today").unit == "century"
    assert parse("t occurs last week") == nodes.Occurs(nodes.Name("t"), "on", nodes.Period("last", "week"))
    assert parse("t occurs on yesterday").ref == nodes.TimeWord("yesterday")
    between = parse("t occurs between date(2024, 1, 1) and today and x = 1")
    assert isinstance(between, nodes.BoolOp) and between.items[0].kind == "between"


def test_select_binds_let_and_aggregates():
    node = parse("select X from xEvent where X.a = 1, Y from X.items: Y.b = 2")
    assert [b.var for b in node.binds] == ["X", "Y"]
    assert node.binds[1].source == nodes.Member(nodes.Name("X"), "items")
    assert parse("let S = 1 + 2 in S > 2") == nodes.Let("S", nodes.Arith(nodes.Lit(1), (("+", nodes.Lit(2)),)),
                                                      nodes.Compare(">", nodes.Name("S"), nodes.Lit(2)))
    assert parse("(sum X.p over X from xEvent) > 1").left == nodes.Over(
        "sum", nodes.Member(nodes.Name("X"), "p"), nodes.Bind("X", nodes.Name("xEvent"), None))
    assert parse("forall X from xEvent: X.a = 1") == nodes.Quant(
        "forall", (nodes.Bind("X", nodes.Name("xEvent"), nodes.Compare("=", nodes.Member(nodes.Name("X"), "a"), nodes.Lit(1))),))


@pytest.mark.parametrize(("text", "message", "line", "column"), [
    ("a = 1 and and b = 2", 'unexpected "and" at line 1, column 11: expected a value', 1, 11),
    ("a = ", "unexpected end of expression at line 1, column 5: expected a value", 1, 5),
    ("a = 1 and\n  b = = 2", 'unexpected "=" at line 2, column 7: expected a value', 2, 7),
    ("a.in = 1", 'unexpected "in" at line 1, column 3: expected a field name', 1, 3),
    ("select X where X.a = 1", 'unexpected "where" at line 1, column 10: expected "from"', 1, 10),
    ("t occurs <= 3 weeks", 'unexpected end of expression at line 1, column 20: expected "before" or "after"', 1, 20),
    ("t occurs <= 3 fortnights before now", 'unexpected "fortnights" at line 1, column 15: expected a time unit',
     1, 15),
    ("t occurs <= 1.5 days before now", 'occurs needs a whole number of units, not "1.5"', 1, 13),
    ("a = 1 # b", 'unexpected character "#" at line 1, column 7', 1, 7),
    ("let S < 1 in S > 0", 'let needs "=", not "<"', 1, 7),
    ("   ", "empty expression", 1, 1),
])
def test_errors_say_where_and_what_was_expected(text, message, line, column):
    with pytest.raises(PqlError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)
    assert (caught.value.line, caught.value.column) == (line, column)


@pytest.mark.parametrize(("text", "construct"), [
    ("(P) => P.homeAddress.city = 1", "lambda fields"),
    ('xEvent[^.city = "x"]', "^ (the parent of a filter item) is not supported"),
])
def test_unsupported_syntax_is_named(text, construct):
    with pytest.raises(PqlError, match=re.escape(construct)):
        parse(text)


def test_chain_is_the_select_it_means():
    one = parse('chain(xEvent, ts, [A: WHAT(k = "a") WHEN(today) COUNT(2)])')
    assert one == nodes.Compare(">=", nodes.Method(nodes.Filter(nodes.Name("xEvent"), nodes.BoolOp("and", (
        nodes.Compare("=", nodes.Name("k"), nodes.Lit("a")),
        nodes.Occurs(nodes.Name("ts"), "on", nodes.TimeWord("today"))))), "count", ()), nodes.Lit(2))
    two = parse('CHAIN(xEvent, ts, [A: WHAT(k = "a"), B: WHERE(k = "b")])')
    assert [b.var for b in two.binds] == ["#step0", "#step1"]
    assert two.binds[1].cond == nodes.Compare(">", nodes.Member(nodes.Name("#step1"), "ts"),
                                              nodes.Member(nodes.Name("#step0"), "ts"))
    assert parse("x.chain = 1").left == nodes.Member(nodes.Name("x"), "chain")


def _bounded(text: str, match: str) -> None:
    started = time.perf_counter()
    with pytest.raises(PqlError, match=match):
        parse(text)
    assert time.perf_counter() - started < 2.0


def test_deep_parentheses_are_refused_without_recursion():
    _bounded("(" * 10_000 + "a = 1" + ")" * 10_000, "nests deeper than 64 levels at line 1, column 65")
    assert parse("(" * 64 + "a = 1" + ")" * 64) == parse("a = 1")
    _bounded("(" * 65 + "a = 1" + ")" * 65, "nests deeper than 64")


def test_deep_nesting_without_brackets_is_refused():
    _bounded("not " * 10_000 + "a = 1", "nests deeper than 64")
    _bounded("let x = 1 in " * 4_000 + "a = 1", "nests deeper than 64")
    _bounded("a" + ".b" * 30_000 + " = 1", "nests deeper than 64")
    assert parse("not (" * 64 + "a = 1" + ")" * 64) is not None


def test_huge_texts_are_refused_before_parsing():
    _bounded(" or ".join(["a = 1"] * 100_000), "longer than 65536 bytes")
    _bounded('s = "' + "\u00e9" * 33_000 + '"', "longer than 65536 bytes")  # 66 KB in UTF-8


def test_the_longest_allowed_or_chain_parses_quickly():
    text = " or ".join(["a = 1"] * 7_000)
    started = time.perf_counter()
    node = parse(text)
    assert time.perf_counter() - started < 2.0
    assert isinstance(node, nodes.BoolOp) and len(node.items) == 7_000


def test_nul_unicode_and_non_text():
    _bounded("a = 1\x00", "NUL")
    assert parse('s = "h\u00e9llo \u2603 \U0001d11e"').right == nodes.Lit("h\u00e9llo \u2603 \U0001d11e")
    with pytest.raises(PqlError, match='unexpected character "\u00f1" at line 1, column 1'):
        parse("\u00f1ame = 1")
    with pytest.raises(PqlError, match=r'unexpected character "\\u200b"'):
        parse("a =\u200b1")
    with pytest.raises(PqlError, match="lone surrogate at offset 5"):
        parse('s = "\udcff"')
    with pytest.raises(PqlError, match=r"\\ud800 is not a character"):
        parse(r's = "\ud800"')
    with pytest.raises(PqlError, match=r"\\u0000 is not a character"):
        parse(r's = "a\u0000"')
    with pytest.raises(PqlError, match="must be a text"):
        parse(b"a = 1")  # type: ignore[arg-type]
