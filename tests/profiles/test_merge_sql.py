"""The generated merge SQL stays inside the dialect subset DuckDB and Spark SQL run identically."""

import re

from upstack.profiles.merge import attribute_merge_sql, identity_union_sql

NOT_PORTABLE = ["arg_max", "arg_min", "struct_pack", "named_struct", "list_", "collect_set", "IGNORE NULLS",
                "epoch_us", "unix_micros", '"']


def test_every_leaf_is_a_filtered_max_by_on_the_precomputed_rank():
    sql = attribute_merge_sql(["c0", "c1"])
    assert "max_by(c0, merge_rank) FILTER (WHERE c0 IS NOT NULL) AS c0" in sql
    assert "max_by(c1, merge_rank) FILTER (WHERE c1 IS NOT NULL) AS c1" in sql
    assert "array_distinct(array_agg(dataset_id)) AS sources" in sql
    assert "GROUP BY profile_idx" in sql
    # Every max_by carries a FILTER: without it DuckDB skips NULLs and Spark returns NULL.
    assert len(re.findall(r"max_by\(", sql)) == len(re.findall(r"\) FILTER \(WHERE", sql))


def test_no_dialect_specific_functions():
    for sql in (attribute_merge_sql(["c0"]), identity_union_sql()):
        for token in NOT_PORTABLE:
            assert token not in sql, token
