"""Evaluate compiled segment definitions over an Arrow table of merged profiles, on DuckDB or a caller's Spark."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from upstack.segments.compile import compile_pql
from upstack.segments.dialect import DIALECTS
from upstack.segments.nodes import Node

VIEW = "pql_profiles"
ALIAS = "profile"


def select_text(table: pa.Table | pa.Schema, definitions: dict[str, str | Node], now: datetime, engine: str) -> str:
    """`SELECT <predicate> AS "<id>", ... FROM pql_profiles AS profile`, one boolean column per definition."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    dialect = DIALECTS[engine]
    columns = [f"{compile_pql(text, schema, now, engine, ALIAS)} AS {dialect.ident(segment_id)}"
               for segment_id, text in definitions.items()]
    return f"SELECT {', '.join(columns) or 'true AS _'} FROM {VIEW} AS {dialect.ident(ALIAS)}"


def qualifying(table: pa.Table, definitions: dict[str, str | Node], now: datetime, engine: str = "duckdb",
               spark: Any = None) -> dict[str, pa.Array]:
    """Per definition id, one boolean per profile row (in the table's order): does the profile qualify."""
    sql = select_text(table, definitions, now, engine)
    if engine == "spark":
        result = _run_spark(spark, table, sql)
    else:
        result = _run_duckdb(table, sql)
    return {segment_id: result.column(i).combine_chunks() for i, segment_id in enumerate(definitions)}


def _run_duckdb(table: pa.Table, sql: str) -> pa.Table:
    import duckdb

    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")  # month(), date_trunc and month intervals in UTC, as PQL has them
        con.register(VIEW, table)
        return con.sql(sql).to_arrow_table()


def _run_spark(spark: Any, table: pa.Table, sql: str) -> pa.Table:
    if spark is None:
        raise ValueError("engine='spark' needs the caller's SparkSession")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.legacy.sizeOfNull", "false")  # size(NULL) is NULL (coalesced to 0), never -1
    spark.createDataFrame(table).createOrReplaceTempView(VIEW)
    return spark.sql(sql).toArrow()
