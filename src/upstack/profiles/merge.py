"""The merge plan: one fragments table layout and the generated SQL texts, portable to Spark SQL, that any
engine (DuckDB here, Spark in spark.py) runs unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa

from .identity import component_anchors
from .load import Path, Records
from .sorting import index_dtype, lexsort
from .unify import cast_to, shared_cursor

# System columns of the fragments table, one row per fragment that belongs to an output row.
FRAGMENT_SYSTEM = pa.schema(
    [
        ("profile_idx", pa.int64()),  # output row inside the part
        ("merge_rank", pa.int64()),  # the policy's precedence as one BIGINT
        ("ts_rank", pa.int64()),  # timestampOrdered rank (picks the representative identity)
        ("ingest_ms", pa.int64()),
        ("dataset_id", pa.int32()),  # code into the sorted dataset ids
        ("primary_node", pa.int64()),
    ]
)
IDENTITY_ROWS = pa.schema(
    [("profile_idx", pa.int64()), ("node", pa.int64()), ("auth", pa.int32()), ("rank", pa.int64())]
)
PER_PROFILE = ["profile_idx", "fragment_count", "last_modified_ms", "representative_node", "sources"]


def record_order_keys(r: Records) -> tuple[np.ndarray, ...]:
    """Keys of "record order" for np.lexsort (least significant first): one precomputed rank (later ingest
    wins, then batch id, then row number, then file path; see load._IndexBuilder.finish)."""
    return (r.order,)


def _rank(order: np.ndarray) -> np.ndarray:
    dtype = index_dtype(len(order))
    rank = np.empty(len(order), dtype=dtype)
    rank[order] = np.arange(len(order), dtype=dtype)
    return rank


def timestamp_rank(r: Records) -> np.ndarray:
    """timestampOrdered as one BIGINT per fragment: coalesce(lastUpdatedDate, ingestTime), then the
    greater dataset id, then record order. Distinct for every fragment, so max_by never ties."""
    return _rank(lexsort((r.order, r.dataset, r.time_ms)))


def precedence_rank(r: Records, order: tuple[str, ...]) -> np.ndarray:
    """dataSetPrecedence as one BIGINT: the dataset's place in `order` first, then timestampOrdered."""
    level = np.asarray([len(order) - order.index(d) if d in order else 0 for d in r.dataset_ids] or [0])
    prec = level[r.dataset] if r.n else np.zeros(0, dtype=np.int64)
    return _rank(lexsort((r.order, r.time_ms, prec)))


def profile_merge_sql(leaf_columns: list[str] = (), table: str = "fragments") -> str:
    """One GROUP BY per profile: its fragment count, last ingest, representative node and sources, plus the
    winner of each leaf in `leaf_columns` (see leaf_winners_sql).

    Portable rules: a precomputed BIGINT rank, array_distinct(array_agg(...)) for the
    source list, and no FILTER clause: DuckDB's cost grows with the square of the FILTERed aggregates of one
    query, so a NULL ordering key (which max_by and max skip on both engines) does the filtering instead.
    """
    return (
        "SELECT profile_idx,\n"
        "  count(*) AS fragment_count,\n"
        "  max(ingest_ms) AS last_modified_ms,\n"
        "  max_by(primary_node, CASE WHEN primary_node IS NOT NULL THEN ts_rank END) AS representative_node,\n"
        "  array_distinct(array_agg(dataset_id)) AS sources"
        f"{_winner_aggs(leaf_columns)}\n"
        f"FROM {table}\n"
        "GROUP BY profile_idx\n"
        "ORDER BY profile_idx"
    )


def leaf_winners_sql(leaf_columns: list[str], table: str = "fragments") -> str:
    """The wide shape: per profile and leaf, the merge_rank of the fragment whose value the leaf takes, i.e.
    the highest rank among the fragments where it is present. Each leaf column is a presence flag: the
    engine never sees the values, which Arrow gathers afterwards (run_attribute_merge)."""
    return f"SELECT profile_idx{_winner_aggs(leaf_columns)}\nFROM {table}\nGROUP BY profile_idx\nORDER BY profile_idx"


def _winner_aggs(leaf_columns: list[str]) -> str:
    return "".join(f",\n  max(CASE WHEN {c} THEN merge_rank END) AS {c}" for c in leaf_columns)


def long_winners_sql(table: str = "leaf_ranks") -> str:
    """The long shape of the same rule: one row (profile_idx, leaf, merge_rank) per present value in, the
    greatest rank per (profile, leaf) out. Its text does not grow with the schema, and its cost follows the
    values present rather than fragments x leaves."""
    return f"SELECT leaf, profile_idx, max(merge_rank) AS merge_rank\nFROM {table}\nGROUP BY leaf, profile_idx"


def identity_union_sql(table: str = "identity_rows") -> str:
    """The identityMap union: each distinct identity once per profile, its authenticatedState taken from
    the highest-ranked record that states one."""
    return (
        "SELECT profile_idx, node,\n"
        "  max_by(auth, CASE WHEN auth IS NOT NULL THEN rank END) AS auth\n"
        f"FROM {table}\n"
        "GROUP BY profile_idx, node\n"
        "ORDER BY profile_idx, node"
    )


@dataclass(frozen=True)
class MergePlan:
    """What every engine runs: the fragments table (system columns, then leaf i as column c<i> of its
    unified type) and the SQL texts over it (winners.py runs the attribute merge)."""

    leaves: tuple[Path, ...]
    types: tuple[pa.DataType, ...]

    @classmethod
    def for_leaves(cls, types: dict[Path, pa.DataType]) -> MergePlan:
        return cls(tuple(types), tuple(types.values()))

    @property
    def columns(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.leaves))]

    @property
    def fragment_schema(self) -> pa.Schema:
        return pa.schema(list(FRAGMENT_SYSTEM) + [pa.field(c, t) for c, t in zip(self.columns, self.types, strict=True)])



class Backend(Protocol):
    """An engine that runs the plan: connected components of the identity graph, and SQL over tables."""

    components: Callable[[int, np.ndarray, np.ndarray], np.ndarray]

    def query(self, sql: str, tables: dict[str, pa.Table]) -> pa.Table: ...

    def close(self) -> None: ...


class DuckDBBackend:
    """One machine: scipy components, DuckDB SQL over Arrow (its own database when spilling is asked for)."""

    def __init__(self, temp_dir: str | None = None, memory_limit: str | None = None):
        self.temp_dir, self.memory_limit = temp_dir, memory_limit
        self._con: duckdb.DuckDBPyConnection | None = None

    components = staticmethod(component_anchors)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if not self.temp_dir and not self.memory_limit:
                self._con = shared_cursor()
            else:
                config: dict[str, str] = {}
                if self.temp_dir:
                    config["temp_directory"] = self.temp_dir
                if self.memory_limit:
                    config["memory_limit"] = self.memory_limit
                self._con = duckdb.connect(config=config)
        return self._con

    def query(self, sql: str, tables: dict[str, pa.Table]) -> pa.Table:
        con = self._connection()
        for name, table in tables.items():
            con.register(name, table)
        try:
            return con.sql(sql).to_arrow_table()
        finally:
            for name in tables:
                con.unregister(name)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def run_identity_union(backend: Backend, rows: pa.Table) -> pa.Table:
    out = backend.query(identity_union_sql(), {"identity_rows": rows})
    return pa.table(
        {
            "profile_idx": cast_to(out.column("profile_idx"), pa.int64()),
            "node": cast_to(out.column("node"), pa.int64()),
            "auth": cast_to(out.column("auth"), pa.int32()),
        }
    )
