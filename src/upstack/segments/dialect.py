"""The few SQL spellings DuckDB and Spark SQL do not share; everything else the compiler emits is common SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

_SPARK_TRY = {"+": "try_add", "-": "try_subtract", "*": "try_multiply"}


@dataclass(frozen=True)
class Dialect:
    name: str

    def ident(self, name: str) -> str:
        if self.name == "spark":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def string(self, text: str) -> str:
        if self.name == "spark":  # Spark reads backslash escapes inside string literals
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"

    @property
    def timestamp_type(self) -> str:
        return "TIMESTAMP" if self.name == "spark" else "TIMESTAMPTZ"

    def timestamp(self, instant: datetime) -> str:
        text = instant.strftime("%Y-%m-%d %H:%M:%S.%f")
        return f"{self.timestamp_type} '{text}+00:00'"

    def lambda_(self, var: str, body: str) -> str:
        return f"{var} -> {body}" if self.name == "spark" else f"lambda {var}: {body}"

    def filter(self, items: str, var: str, cond: str) -> str:
        fn = "filter" if self.name == "spark" else "list_filter"
        return f"{fn}({items}, {self.lambda_(var, cond)})"

    def transform(self, items: str, var: str, expr: str) -> str:
        fn = "transform" if self.name == "spark" else "list_transform"
        return f"{fn}({items}, {self.lambda_(var, expr)})"

    def size(self, items: str) -> str:
        return f"size({items})" if self.name == "spark" else f"len({items})"

    def sum(self, items: str, acc: str, var: str) -> str:
        """The sum of a list's non-null numbers as DOUBLE; NULL for a NULL list (0 for an empty one on Spark)."""
        if self.name == "spark":
            return f"aggregate({items}, CAST(0 AS DOUBLE), ({acc}, {var}) -> {acc} + coalesce({var}, 0))"
        return f"CAST(list_sum({items}) AS DOUBLE)"

    def checked(self, op: str, left: str, right: str) -> str:
        """Integer + - * that answers NULL on overflow."""
        if self.name == "spark":
            return f"{_SPARK_TRY[op]}({left}, {right})"
        return f"TRY({left} {op} {right})"

    def min(self, items: str) -> str:
        return f"array_min({items})" if self.name == "spark" else f"list_min({items})"

    def max(self, items: str) -> str:
        return f"array_max({items})" if self.name == "spark" else f"list_max({items})"

    def regex(self, text: str, pattern: str) -> str:
        """True when the pattern matches anywhere in the text (RE2 on DuckDB, java.util.regex on Spark)."""
        return f"({text} RLIKE {pattern})" if self.name == "spark" else f"regexp_matches({text}, {pattern})"

    def overlaps(self, left: str, right: str) -> str:
        return f"arrays_overlap({left}, {right})" if self.name == "spark" else f"array_has_any({left}, {right})"

    def array(self, items: list[str]) -> str:
        return f"array({', '.join(items)})" if self.name == "spark" else f"[{', '.join(items)}]"


DIALECTS = {"duckdb": Dialect("duckdb"), "spark": Dialect("spark")}
