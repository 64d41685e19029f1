"""The generated merge SQL stays inside the dialect subset DuckDB and Spark SQL run identically."""

import re

import numpy as np
import pyarrow as pa
import pytest

from upstack.profiles.merge import (
    FRAGMENT_SYSTEM,
    DuckDBBackend,
    MergePlan,
    identity_union_sql,
    leaf_winners_sql,
    long_winners_sql,
    profile_merge_sql,
)
from upstack.profiles.winners import presence_patterns, run_attribute_merge

NOT_PORTABLE = ["arg_max", "arg_min", "struct_pack", "named_struct", "list_", "collect_set", "IGNORE NULLS",
                "epoch_us", "unix_micros", '"']
ALL_SQL = [profile_merge_sql(["p0"]), leaf_winners_sql(["p0", "p1"]), long_winners_sql(), identity_union_sql()]


def test_every_leaf_takes_the_greatest_rank_among_the_fragments_where_it_is_present():
    sql = profile_merge_sql(["p0", "p1"])
    assert "max(CASE WHEN p0 THEN merge_rank END) AS p0" in sql
    assert "max(CASE WHEN p1 THEN merge_rank END) AS p1" in sql
    assert "array_distinct(array_agg(dataset_id)) AS sources" in sql
    assert "GROUP BY profile_idx" in sql
    assert "GROUP BY leaf, profile_idx" in long_winners_sql()


@pytest.mark.parametrize("sql", ALL_SQL)
def test_no_filter_clause(sql):
    # DuckDB's planning grows with the square of the FILTERed aggregates of one query (400 of them: 2.6 s);
    # a NULL ordering key, which max and max_by skip on both engines, filters instead.
    assert "FILTER" not in sql
    assert len(re.findall(r"max_by\(", sql)) == len(re.findall(r"max_by\(\w+, CASE WHEN \w+ IS NOT NULL", sql))


@pytest.mark.parametrize("sql", ALL_SQL)
def test_no_dialect_specific_functions(sql):
    for token in NOT_PORTABLE:
        assert token not in sql, token


def test_leaves_present_in_the_same_fragments_share_one_pattern():
    a = pa.array(["x", None, "y"])
    b = pa.array([1, None, 2])  # same fragments as a
    c = pa.array([None, None, None])  # never present: no pattern
    d = pa.chunked_array([[1.0], [2.0, 3.0]])  # everywhere
    patterns = presence_patterns([a, b, c, d])
    assert patterns.leaves == [[0, 1], [3]]
    assert patterns.present == [2, 3]


def _fragments(profile, rank, leaves):
    n = len(profile)
    system = {"profile_idx": profile, "merge_rank": rank, "ts_rank": rank, "ingest_ms": np.zeros(n, np.int64),
              "dataset_id": np.zeros(n, np.int32), "primary_node": np.zeros(n, np.int64)}
    plan = MergePlan.for_leaves({(f"f{i}",): a.type for i, a in enumerate(leaves)})
    arrays = [pa.array(system[f.name], f.type) for f in FRAGMENT_SYSTEM] + leaves
    return plan, pa.Table.from_arrays(arrays, schema=plan.fragment_schema)


def test_wide_and_long_shapes_pick_the_same_winners(monkeypatch):
    from upstack.profiles import winners

    rng = np.random.default_rng(3)
    n = 200
    profile = np.sort(rng.integers(0, 40, n))
    rank = rng.permutation(n) * 7
    leaves = [pa.array(np.where(rng.random(n) < p, np.arange(n), -1)).cast(pa.string()) for p in (0.1, 0.5, 1.0)]
    leaves = [pa.array([None if v == "-1" else v for v in a.to_pylist(maps_as_pydicts="strict")], pa.string()) for a in leaves]
    leaves.append(pa.array([{"x": [i]} if i % 3 else None for i in range(n)]))  # a nested leaf, moved by Arrow
    plan, table = _fragments(profile, rank, leaves)
    monkeypatch.setattr(winners, "LEAF_CHUNK", 2)  # the wide shape in two queries
    backend = DuckDBBackend()
    try:
        wide = run_attribute_merge(backend, plan, table, shape="wide")
        long = run_attribute_merge(backend, plan, table, shape="long")
    finally:
        backend.close()
    assert wide[0].equals(long[0])
    assert {p: a.to_pylist(maps_as_pydicts="strict") for p, a in wide[1].items()} == {p: a.to_pylist(maps_as_pydicts="strict") for p, a in long[1].items()}
    # Hand check: the greatest rank among the profile's fragments where the leaf is present.
    for k, leaf in enumerate(leaves):
        got = wide[1][(f"f{k}",)].to_pylist(maps_as_pydicts="strict")
        values = leaf.to_pylist(maps_as_pydicts="strict")
        for row, p in enumerate(wide[0].column("profile_idx").to_pylist(maps_as_pydicts="strict")):
            present = [i for i in range(n) if profile[i] == p and values[i] is not None]
            assert got[row] == (values[max(present, key=lambda i: rank[i])] if present else None)
