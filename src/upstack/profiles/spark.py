"""The merge plan on Apache Spark: the same SQL texts (merge.py) over Parquet in a work directory, and the
pdg connected components by label propagation in DataFrame operations, never collected to the driver.

Tables travel as Parquet files under the merge's work directory (below the caller's temp_dir), so on a
cluster that directory must be on a filesystem the executors share with the worker (see docs/SCALING.md).
"""

from __future__ import annotations

import glob
import os
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_sessions: dict[str, object] = {}
_lock = threading.Lock()
MAX_ITERATIONS = 100
BROADCAST_ROWS = 2_000_000  # frontiers up to this size go to every executor whole (~32 MB)


def session(master: str):
    """One SparkSession per master for the whole process (starting one costs seconds)."""
    from pyspark.sql import SparkSession

    with _lock:
        spark = _sessions.get(master)
        if spark is None or spark.sparkContext._jsc is None:
            builder = (
                SparkSession.builder.master(master)
                .appName("upstack-merge")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
                .config("spark.ui.showConsoleProgress", "false")
            )
            if master.startswith("local"):
                builder = (
                    builder.config("spark.ui.enabled", "false")
                    .config("spark.sql.shuffle.partitions", "8")
                    .config("spark.driver.memory", os.environ.get("UPSTACK_SPARK_DRIVER_MEMORY", "2g"))
                )
            spark = builder.getOrCreate()
            spark.sparkContext.setLogLevel("ERROR")
            _sessions[master] = spark
        return spark


def stop_sessions() -> None:
    with _lock:
        for spark in _sessions.values():
            spark.stop()
        _sessions.clear()


class SparkBackend:
    """Runs the plan on a Spark cluster (or local[N]): SQL texts unchanged, components distributed."""

    def __init__(self, master: str, work_dir: str | None):
        if not work_dir:
            raise ValueError("the Spark engine needs a work directory (temp_dir) shared with its executors")
        self.spark = session(master)
        self.work_dir = work_dir
        self._count = 0
        self._views: list[str] = []

    def _path(self, name: str) -> str:
        self._count += 1
        return os.path.join(self.work_dir, f"spark-{self._count:05d}-{name}")

    def _to_spark(self, table: pa.Table, name: str):
        path = self._path(name) + ".parquet"
        pq.write_table(table, path, compression="lz4")
        return self.spark.read.parquet("file://" + path if "://" not in path else path)

    def _to_arrow(self, df, name: str) -> pa.Table:
        if hasattr(df, "toArrow"):  # pyspark >= 4: one collect, the sort order kept
            return df.toArrow()
        path = self._path(name)
        df.write.mode("overwrite").parquet(path)
        # Spark writes a sorted result as range partitions numbered in order: reading the files by name
        # keeps the ORDER BY of the SQL text.
        files = sorted(glob.glob(os.path.join(path, "part-*.parquet")))
        tables = [pq.read_table(f) for f in files]
        if not tables:
            return pa.table({f.name: pa.array([], pa.null()) for f in df.schema.fields})
        return pa.concat_tables(tables, promote_options="permissive")

    def query(self, sql: str, tables: dict[str, pa.Table]) -> pa.Table:
        for name, table in tables.items():
            self._to_spark(table, name).createOrReplaceTempView(name)
            self._views.append(name)
        return self._to_arrow(self.spark.sql(sql), "result")

    def components(self, n_nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per node, the smallest node of its component: min-label propagation where only the nodes whose
        label moved in the last round tell their neighbours (small frontiers are broadcast, so late
        rounds scan the edges instead of shuffling them), with pointer jumping, one checkpoint per round."""
        from pyspark.sql import functions as F

        anchor = np.arange(n_nodes, dtype=np.int64)
        if len(a) == 0:
            return anchor
        edges = self._to_spark(pa.table({"src": a, "dst": b}), "edges")
        edges = edges.union(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst"))).distinct()
        edges = edges.localCheckpoint()
        labels = (
            edges.groupBy("src")
            .agg(F.least(F.col("src"), F.min("dst")).alias("label"))
            .withColumnRenamed("src", "node")
            .localCheckpoint()
        )
        frontier = labels.where(F.col("label") < F.col("node"))
        size = frontier.count()
        for _ in range(MAX_ITERATIONS):
            if size == 0:
                break
            told = F.broadcast(frontier) if size <= BROADCAST_ROWS else frontier
            heard = (
                edges.join(told, edges.dst == told.node)
                .groupBy(edges.src)
                .agg(F.min("label").alias("heard"))
                .withColumnRenamed("src", "node")
            )
            moved = (
                heard.join(labels, "node")
                .where(F.col("heard") < F.col("label"))
                .select("node", F.col("heard").alias("label"))
            )
            # Pointer jumping: take the label of the new label (a node of the same component), so a chain
            # of n identities settles in about log2(n) rounds instead of n.
            via = labels.select(F.col("node").alias("via"), F.col("label").alias("via_label"))
            moved = (
                moved.join(via, moved.label == via.via, "left")
                .select("node", F.least(F.col("label"), F.coalesce(F.col("via_label"), F.col("label"))).alias("label"))
                .localCheckpoint()
            )
            size = moved.count()
            if size:
                update = F.broadcast(moved) if size <= BROADCAST_ROWS else moved
                labels = (
                    labels.join(update.withColumnRenamed("label", "moved"), "node", "left")
                    .select("node", F.coalesce(F.col("moved"), F.col("label")).alias("label"))
                    .localCheckpoint()
                )
            frontier = moved
        else:
            raise RuntimeError(f"label propagation did not converge in {MAX_ITERATIONS} rounds")
        result = self._to_arrow(labels, "labels")
        if result.num_rows:
            anchor[result.column("node").to_numpy()] = result.column("label").to_numpy()
        return anchor

    def close(self) -> None:
        for name in self._views:
            self.spark.catalog.dropTempView(name)
        self._views.clear()

