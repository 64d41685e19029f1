"""Parse PQL (the Profile Query Language subset of SEGMENTATION.md section 4) into a small typed AST."""

from __future__ import annotations

import re

from lark import Lark, Token, Transformer_NonRecursive, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from upstack.segments.nodes import (
    Arith,
    ArrayLit,
    Bind,
    BoolOp,
    Call,
    Compare,
    Dollar,
    Filter,
    In,
    Let,
    Like,
    Lit,
    Member,
    Method,
    Name,
    Negate,
    Node,
    Not,
    Occurs,
    Over,
    Period,
    Quant,
    Select,
    TimeWord,
)

MAX_TEXT_BYTES = 64 * 1024
MAX_NESTING = 64


class PqlError(ValueError):
    """An invalid or unsupported PQL expression; line and column are 1-based (0 when not tied to a place)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


# ---- grammar ---------------------------------------------------------------------------------------------------

UNITS = ("millisecond", "second", "minute", "hour", "day", "week", "month", "year", "decade", "century",
         "millennium")
_PLURAL = {"centuries": "century", "millennia": "millennium"}

GRAMMAR = r"""
?start: expr
?expr: or_
?or_: and_ ("or" and_)*
?and_: neg ("and" neg)*
?neg: ("not" | "!") neg -> not_
    | cmp
?cmp: add
    | add CMPOP add -> compare
    | add "in" add -> in_
    | add "notIn" add -> not_in
    | add "like" STRING -> like
    | add "matches" STRING -> matches
    | add "occurs" occurs
occurs: CMPOP NUMBER UNIT DIRECTION time -> occ_amount
      | DIRECTION time -> occ_direction
      | "on"? time -> occ_on
      | "between" time "and" time -> occ_between
?time: add
     | RELATIVE UNIT -> period
?add: mul ((PLUS | MINUS) mul)*
?mul: unary ((STAR | SLASH | PERCENT) unary)*
?unary: MINUS unary -> negate
      | post
?post: prim postfix*
postfix: "." NAME -> member
       | "." NAME "(" [args] ")" -> method
       | "[" expr "]" -> filter
args: expr ("," expr)*
?prim: STRING -> string
     | NUMBER -> number
     | "true" -> true
     | "false" -> false
     | "null" -> null
     | TIMEWORD -> timeword
     | NAME -> name
     | DOLLAR -> dollar
     | "(" expr ")"
     | NAME "(" [args] ")" -> call
     | "[" [args] "]" -> array
     | "let" NAME CMPOP add "in" expr -> let
     | "select" bind ("," bind)* -> select
     | QUANT bind ("," bind)* -> quant
     | AGG add "over" bind -> over
     | CHAIN "(" post "," NAME "," "[" step ("," step)* "]" ")" -> chain
bind: NAME "from" post (("where" | ":") expr)?
step: NAME ":" clause+
clause: "WHAT" "(" expr ")" -> what
      | "WHEN" "(" occurs ")" -> when
      | "COUNT" "(" NUMBER ")" -> count
      | "WHERE" "(" expr ")" -> what

CMPOP: "!=" | "<=" | ">=" | "=" | "<" | ">"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
PERCENT: "%"
TIMEWORD.2: /(now|today|yesterday|tomorrow)(?![A-Za-z0-9_])/
RELATIVE.2: /(this|last|next)(?![A-Za-z0-9_])/
DIRECTION.2: /(before|after)(?![A-Za-z0-9_])/
QUANT.2: /(exists|forall)(?![A-Za-z0-9_])/
AGG.2: /(sum|average|min|max)(?![A-Za-z0-9_])/
CHAIN.3: /(chain|CHAIN)(?![A-Za-z0-9_])/
UNIT.2: /(milliseconds?|seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|century|centuries|millennium|millennia)(?![A-Za-z0-9_])/
NAME: /(?!(and|or|not|in|notIn|like|occurs|true|false|null|select|let|from|where|over)(?![A-Za-z0-9_]))[A-Za-z_][A-Za-z0-9_]*/
DOLLAR: /\$1(?![0-9])/
NUMBER: /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
STRING: /"(?:[^"\\]|\\.)*"/ | /'(?:[^'\\]|\\.)*'/
%ignore /[ \t\r\n]+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=False, maybe_placeholders=False)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\", "/": "/"}


def _unquote(token: str) -> str:
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            code = int(body[i + 2:i + 6], 16)
            if 0xD800 <= code <= 0xDFFF or code == 0:
                raise PqlError(f"\\u{body[i + 2:i + 6]} is not a character a text can hold")
            out.append(chr(code))
            i += 6
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:  # unknown escapes keep the backslash (regex texts like "\d" stay as written)
            out.append("\\" + nxt)
            i += 2
    return "".join(out)


def unit_name(word: str) -> str:
    word = _PLURAL.get(word, word)
    return word[:-1] if word.endswith("s") else word


class _ToAst(Transformer_NonRecursive):
    def string(self, c):
        return Lit(_unquote(str(c[0])))

    def number(self, c):
        text = str(c[0])
        return Lit(int(text)) if re.fullmatch(r"[0-9]+", text) else Lit(float(text))

    def true(self, _c):
        return Lit(True)

    def false(self, _c):
        return Lit(False)

    def null(self, _c):
        return Lit(None)

    def timeword(self, c):
        return TimeWord(str(c[0]))

    def name(self, c):
        return Name(str(c[0]))

    def dollar(self, _c):
        return Dollar()

    def args(self, c):
        return tuple(c)

    def call(self, c):
        return Call(str(c[0]), c[1] if len(c) > 1 and c[1] is not None else ())

    def array(self, c):
        return ArrayLit(c[0] if c and c[0] is not None else ())

    def member(self, c):
        return ("member", str(c[0]))

    def method(self, c):
        return ("method", str(c[0]), c[1] if len(c) > 1 and c[1] is not None else ())

    def filter(self, c):
        return ("filter", c[0])

    def post(self, c):
        if len(c) > 4 * MAX_NESTING:  # each suffix nests the AST one level deeper
            raise PqlError(f"expression nests deeper than {MAX_NESTING} levels ({len(c) - 1} fields or calls in a row)")
        node = c[0]
        for suffix in c[1:]:
            if suffix[0] == "member":
                node = Member(node, suffix[1])
            elif suffix[0] == "method":
                node = Method(node, suffix[1], suffix[2])
            else:
                node = Filter(node, suffix[1])
        return node

    def not_(self, c):
        return Not(c[0])

    def or_(self, c):
        return BoolOp("or", tuple(c))

    def and_(self, c):
        return BoolOp("and", tuple(c))

    def compare(self, c):
        return Compare(str(c[1]), c[0], c[2])

    def in_(self, c):
        return In(False, c[0], c[1])

    def not_in(self, c):
        return In(True, c[0], c[1])

    def like(self, c):
        return Like(c[0], _unquote(str(c[1])))

    def matches(self, c):
        return Method(c[0], "matches", (Lit(_unquote(str(c[1]))),))

    def _arith(self, c):
        return Arith(c[0], tuple((str(c[i]), c[i + 1]) for i in range(1, len(c), 2)))

    add = mul = _arith

    def negate(self, c):
        return Negate(c[1])

    def period(self, c):
        return Period(str(c[0]), unit_name(str(c[1])))

    def occ_amount(self, c):
        op, number, unit, direction, ref = c
        if not re.fullmatch(r"[0-9]+", str(number)):
            raise PqlError(f'occurs needs a whole number of units, not "{number}"', number.line, number.column)
        return ("amount", ref, None, str(op), int(str(number)), unit_name(str(unit)), _direction(direction))

    def occ_direction(self, c):
        return ("direction", c[1], None, "", 0, "", _direction(c[0]))

    def occ_on(self, c):
        return ("on", c[0], None, "", 0, "", "")

    def occ_between(self, c):
        return ("between", c[0], c[1], "", 0, "", "")

    def cmp(self, c):  # `add "occurs" occurs`, the one unaliased cmp form; c[1] is an occ_* tuple
        kind, ref, ref2, op, amount, unit, direction = c[1]
        return Occurs(c[0], kind, ref, ref2, op, amount, unit, direction)

    def let(self, c):
        if str(c[1]) != "=":
            raise PqlError(f'let needs "=", not "{c[1]}"', c[1].line, c[1].column)
        return Let(str(c[0]), c[2], c[3])

    def bind(self, c):
        return Bind(str(c[0]), c[1], c[2] if len(c) > 2 else None)

    def select(self, c):
        return Select(tuple(c))

    def quant(self, c):
        return Quant(str(c[0]), tuple(c[1:]))

    def over(self, c):
        return Over(str(c[0]), c[1], c[2])

    def what(self, c):
        return ("what", c[0])

    def when(self, c):
        return ("when", c[0])

    def count(self, c):
        if not re.fullmatch(r"[1-9][0-9]{0,5}", str(c[0])):
            raise PqlError(f'COUNT needs a whole number from 1, not "{c[0]}"', c[0].line, c[0].column)
        return ("count", int(str(c[0])))

    def step(self, c):
        return (str(c[0]), tuple(c[1:]))

    def chain(self, c):
        return desugar_chain(c[1], str(c[2]), c[3:])


def desugar_chain(source: Node, ts_field: str, steps: list[tuple[str, tuple]]) -> Node:
    """chain(source, ts, [L: WHAT(c) WHEN(w) COUNT(n) WHERE(c), ...]) as the select it means: one step is at least
    n events passing c and w (fields relative to the event); several steps are events in strictly increasing ts."""
    conditions = []
    for label, clauses in steps:
        kinds = [clause[0] for clause in clauses]
        if kinds.count("when") > 1 or kinds.count("count") > 1:
            raise PqlError(f"chain step {label} has more than one WHEN or COUNT")
        parts = [c[1] for c in clauses if c[0] == "what"]
        parts += [Occurs(Name(ts_field), *c[1]) for c in clauses if c[0] == "when"]
        counts = [c[1] for c in clauses if c[0] == "count"]
        conditions.append((label, BoolOp("and", tuple(parts)) if len(parts) > 1 else parts[0] if parts else
                           Lit(True), counts[0] if counts else 1))
    if len(conditions) == 1:
        _, cond, at_least = conditions[0]
        return Compare(">=", Method(Filter(source, cond), "count", ()), Lit(at_least))
    if any(at_least != 1 for _, _, at_least in conditions):
        raise PqlError("COUNT in a chain of several steps is not supported")
    binds = []
    for i, (_, cond, _) in enumerate(conditions):
        order = Compare(">", Member(Name(f"#step{i}"), ts_field), Member(Name(f"#step{i - 1}"), ts_field))
        binds.append(Bind(f"#step{i}", Filter(source, cond), order if i else None))
    return Select(tuple(binds))


def _direction(token: Token) -> str:
    return "before" if str(token) == "before" else "after"


_FRIENDLY = {"LPAR": '"("', "LSQB": '"["', "RPAR": '")"', "RSQB": '"]"', "COMMA": '","', "CMPOP": "a comparison", "UNIT": "a time unit",
             "DIRECTION": '"before" or "after"', "NUMBER": "a number", "NAME": "a name", "STRING": "a string",
             "$END": "the end of the expression", "DOT": '"."', "COLON": '":"'}


def _expected(expected: set[str]) -> str:
    if expected == {"NAME"}:
        return "a field name"
    if expected & {"STRING", "NUMBER", "NAME"}:
        return "a value"
    words = sorted({_FRIENDLY.get(t, f'"{t.lower()}"') for t in expected})
    if len(words) > 6:
        return "an operator or the end of the expression"
    return " or ".join(words) if words else "nothing more"


def _fail(text: str, err: UnexpectedInput) -> PqlError:
    line, column = getattr(err, "line", 0), getattr(err, "column", 0)
    if "=>" in _without_strings(text):
        return PqlError("lambda fields ((P) => P.field) are not supported: write the path, or $1.path", line, column)
    if isinstance(err, UnexpectedToken) and err.token.type == "$END" or isinstance(err, UnexpectedEOF):
        expected = getattr(err, "expected", None) or set()
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
        return PqlError(f"unexpected end of expression at line {line}, column {column}: "
                        f"expected {_expected(set(expected))}", line, column)
    if isinstance(err, UnexpectedToken):
        return PqlError(f'unexpected "{err.token}" at line {line}, column {column}: '
                        f"expected {_expected(set(err.expected))}", line, column)
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        if char == "^":
            return PqlError(f"^ (the parent of a filter item) is not supported, at line {line}, column {column}",
                            line, column)
        shown = char if char.isprintable() else f"\\u{ord(char):04x}"
        return PqlError(f'unexpected character "{shown}" at line {line}, column {column}', line, column)
    return PqlError(f"invalid expression at line {line}, column {column}", line, column)


def _without_strings(text: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', text)


def _check_nesting(text: str) -> None:
    """Bracket depth outside strings, before Lark builds a tree the transformer would have to walk."""
    depth, line, column, quote, escaped = 0, 1, 0, "", False
    for ch in text:
        column += 1
        if ch == "\n":
            line, column = line + 1, 0
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
            if depth > MAX_NESTING:
                raise PqlError(f"expression nests deeper than {MAX_NESTING} levels at line {line}, column {column}",
                               line, column)
        elif ch in ")]":
            depth -= 1


def _tree_depth(tree: Tree) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def parse(text: str) -> Node:
    """The AST of one PQL expression, or PqlError saying where and why it fails."""
    if not isinstance(text, str):
        raise PqlError("a PQL expression must be a text")
    if len(text) > MAX_TEXT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise PqlError(f"expression longer than {MAX_TEXT_BYTES} bytes")
    if "\x00" in text:
        raise PqlError("expression contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise PqlError(f"expression is not valid Unicode (a lone surrogate at offset {err.start})") from None
    if not text.strip():
        raise PqlError("empty expression", 1, 1)
    _check_nesting(text)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as err:
        raise _fail(text, err) from None
    if isinstance(tree, Tree) and _tree_depth(tree) > 4 * MAX_NESTING:
        raise PqlError(f"expression nests deeper than {MAX_NESTING} levels")
    try:
        ast = _ToAst().transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, PqlError):
            raise err.orig_exc from None
        raise
    if isinstance(ast, Token):  # a lone terminal the ?rules inlined
        ast = _ToAst().transform(Tree("name", [ast]))
    return ast
