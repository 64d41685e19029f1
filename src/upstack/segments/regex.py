"""Regular expressions both engines read alike: PQL like patterns as regexes, and the check of matches() texts."""

from __future__ import annotations

import re

from upstack.segments import nodes
from upstack.segments.pql import PqlError

_NOT_PORTABLE = re.compile(r"\(\?<?[=!]|\\[1-9]|[*+?}][+]|\\[pPQE]|\(\?[a-z]*[^a-z:)]")


def check_regex(pattern: nodes.Node) -> None:
    """matches() takes a literal regex in the syntax RE2 (DuckDB) and java.util.regex (Spark) share, so it fails
    here rather than in the engine."""
    if not isinstance(pattern, nodes.Lit) or not isinstance(pattern.value, str):
        raise PqlError("matches() needs a literal regular expression text")
    if _NOT_PORTABLE.search(pattern.value):
        raise PqlError(f'regular expression "{pattern.value}" uses lookaround, backreferences, possessive '
                       "quantifiers or other syntax not supported on every engine")
    try:
        re.compile(pattern.value)
    except re.error as err:
        raise PqlError(f'invalid regular expression "{pattern.value}": {err}') from None


_REGEX_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def like_regex(pattern: str) -> str:
    """PQL like (% any run, _ one character) as an anchored regex both RE2 and java.util.regex read."""
    out = ["(?s)^"]
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else _REGEX_SPECIAL.sub(r"\\\1", ch))
    return "".join(out) + "$"
