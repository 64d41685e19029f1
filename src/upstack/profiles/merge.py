"""The attribute merge as one generated SQL text (portable to Spark SQL), run on DuckDB over Arrow."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from .load import Path, Records
from .unify import cast_to, shared_cursor


def record_order_keys(r: Records) -> tuple[np.ndarray, ...]:
    """Keys of "record order" for np.lexsort (least significant first): later ingest wins, then batch id,
    then row number; the file path only separates byte-identical keys so the result stays deterministic."""
    return (r.file, r.row, r.batch, r.ingest_ms)


def _rank(order: np.ndarray) -> np.ndarray:
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def timestamp_rank(r: Records) -> np.ndarray:
    """timestampOrdered as one BIGINT per fragment: coalesce(lastUpdatedDate, ingestTime), then the
    greater dataset id, then record order. Distinct for every fragment, so max_by never ties."""
    return _rank(np.lexsort((*record_order_keys(r), r.dataset, r.time_ms)))


def precedence_rank(r: Records, order: tuple[str, ...]) -> np.ndarray:
    """dataSetPrecedence as one BIGINT: the dataset's place in `order` first, then timestampOrdered."""
    level = np.asarray([len(order) - order.index(d) if d in order else 0 for d in r.dataset_ids] or [0])
    prec = level[r.dataset] if r.n else np.zeros(0, dtype=np.int64)
    return _rank(np.lexsort((*record_order_keys(r), r.time_ms, prec)))


def attribute_merge_sql(columns: list[str], table: str = "fragments") -> str:
    """One GROUP BY per profile: every leaf takes its non-null value with the highest merge_rank.

    Portable rules (see PERFORMANCE-NOTES): FILTER on every max_by, a precomputed BIGINT rank, and
    array_distinct(array_agg(...)) for the source list.
    """
    leaf_aggs = "".join(
        f",\n  max_by({c}, merge_rank) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in columns
    )
    return (
        "SELECT profile_idx,\n"
        "  count(*) AS fragment_count,\n"
        "  max(ingest_ms) AS last_modified_ms,\n"
        "  max_by(primary_node, ts_rank) FILTER (WHERE primary_node IS NOT NULL) AS representative_node,\n"
        "  array_distinct(array_agg(dataset_id)) AS sources"
        f"{leaf_aggs}\n"
        f"FROM {table}\n"
        "GROUP BY profile_idx\n"
        "ORDER BY profile_idx"
    )


def identity_union_sql(table: str = "identity_rows") -> str:
    """The identityMap union: each distinct identity once per profile, its authenticatedState taken from
    the highest-ranked record that states one."""
    return (
        "SELECT profile_idx, node,\n"
        "  max_by(auth, rank) FILTER (WHERE auth IS NOT NULL) AS auth\n"
        f"FROM {table}\n"
        "GROUP BY profile_idx, node\n"
        "ORDER BY profile_idx, node"
    )


def connect(temp_dir: str | None, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for one merge; its own database only when spilling/limits are asked for."""
    if not temp_dir and not memory_limit:
        return shared_cursor()
    config: dict[str, str] = {}
    if temp_dir:
        config["temp_directory"] = temp_dir
    if memory_limit:
        config["memory_limit"] = memory_limit
    return duckdb.connect(config=config)


def run_attribute_merge(
    con: duckdb.DuckDBPyConnection,
    fragments: pa.Table,
    leaves: dict[Path, pa.Array],
) -> tuple[pa.Table, dict[Path, pa.Array]]:
    """Run the merge over `fragments` (system columns + leaves as c0..cN) and give back the per-profile
    system columns and the merged leaves, cast back to their unified Arrow types."""
    paths = list(leaves)
    columns = [f"c{i}" for i in range(len(paths))]
    table = fragments
    for c, p in zip(columns, paths, strict=True):
        table = table.append_column(c, leaves[p])
    con.register("fragments", table)
    try:
        merged = con.sql(attribute_merge_sql(columns)).to_arrow_table()
    finally:
        con.unregister("fragments")
    out = {p: cast_to(merged.column(c), leaves[p].type) for c, p in zip(columns, paths, strict=True)}
    return merged.select(
        ["profile_idx", "fragment_count", "last_modified_ms", "representative_node", "sources"]
    ), out


def run_identity_union(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> pa.Table:
    con.register("identity_rows", rows)
    try:
        return con.sql(identity_union_sql()).to_arrow_table()
    finally:
        con.unregister("identity_rows")
