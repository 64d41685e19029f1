"""Pick the engine that runs the merge plan: DuckDB on this machine, or Apache Spark (UPSTACK_ENGINE)."""

from __future__ import annotations

import os

from .merge import Backend, DuckDBBackend

ENGINE_ENV = "UPSTACK_ENGINE"
SPARK_MASTER_ENV = "UPSTACK_SPARK_MASTER"
ENGINES = ("duckdb", "spark")
DEFAULT_SPARK_MASTER = "local[2]"


def engine_name(engine: str | None = None) -> str:
    """The engine asked for, else UPSTACK_ENGINE, else duckdb."""
    name = (engine or os.environ.get(ENGINE_ENV) or "duckdb").strip().lower()
    if name not in ENGINES:
        raise ValueError(f"unknown merge engine {name!r}: use one of {', '.join(ENGINES)}")
    return name


def _master(master: str | None = None) -> str:
    """The master asked for, else UPSTACK_SPARK_MASTER, else local[2]."""
    return master or os.environ.get(SPARK_MASTER_ENV) or DEFAULT_SPARK_MASTER


def open_backend(
    engine: str | None,
    *,
    temp_dir: str | None,
    memory_limit: str | None,
    work_dir: str | None,
    spark_master: str | None = None,
) -> Backend:
    if engine_name(engine) == "spark":
        from .spark import SparkBackend

        return SparkBackend(_master(spark_master), work_dir=work_dir)
    return DuckDBBackend(temp_dir, memory_limit)
