"""The Spark engine runs the same merge plan: hand-checked lakes give identical rows on Spark and DuckDB.

One local[2] session for the whole module. On CI (CI=true) a missing pyspark fails the module instead of
skipping it: the parity must be checked there.
"""

import inspect
import os

import numpy as np
import pytest

try:
    import pyspark  # noqa: F401
except ImportError:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("pyspark is not installed (pip install -e '.[spark]')", allow_module_level=True)

from pathlib import Path

from tests.profiles import (
    test_events,
    test_filters,
    test_identity_graph,
    test_lookup,
    test_merge_policies,
    test_schema_drift,
)
from tests.profiles.lakes import PDG, Lake, clean
from upstack.profiles import ExportQuery, MergePolicySpec, SegmentFilter, merge_profiles, winners
from upstack.profiles import spark as spark_engine
from upstack.profiles.identity import component_anchors


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """One layout here (conftest's fixture gives the engine tests both): they read the same before Spark."""
    return Lake(tmp_path)


@pytest.fixture(scope="module")
def spark():
    session = spark_engine.session("local[2]")
    yield session
    spark_engine.stop_sessions()


def _snapshot(result):
    return (clean(result.profiles.to_pylist(maps_as_pydicts="strict")), result.profiles.schema, result.meta.to_pylist(maps_as_pydicts="strict"),
            result.by_namespace, result.excluded_components, result.fragments_read, result.events_read)


PRECEDENCE = MergePolicySpec(identity_graph="pdg", attribute_merge="dataSetPrecedence", order=("loyalty", "crm"))
LAKES = [
    (test_identity_graph._chain_lake, PDG, ExportQuery(include_events=True, empty_profiles=True)),
    (test_identity_graph._chain_lake, PRECEDENCE, ExportQuery(include_events=True, event_fields=("_id",))),
    (test_lookup._lake, MergePolicySpec(), ExportQuery(include_events=True, empty_profiles=True,
                                                       fields=("person", "identities"))),
    (test_lookup._lake, PDG, ExportQuery(identity=("PHONE", "555"), include_events=True)),
    (test_events._web_events, PDG, ExportQuery(include_events=True, event_from_ingest_ms=test_events.JAN1 + 1)),
    (test_filters._segmented, PDG, ExportQuery(segments=(SegmentFilter("s1"),))),
    (test_identity_graph._linked_by_an_unlisted_dataset, test_identity_graph.LOYALTY_ONLY,
     ExportQuery(include_events=True, empty_profiles=True)),
]


@pytest.mark.parametrize("shape", winners.SHAPES)
@pytest.mark.parametrize("build, policy, query", LAKES)
def test_spark_gives_the_duckdb_rows(spark, lake, tmp_path, build, policy, query, shape, monkeypatch):
    build(lake)
    duck = merge_profiles(lake.inputs(), policy, query)
    # Both SQL shapes of the attribute merge on Spark against DuckDB's own choice.
    monkeypatch.setattr(winners, "choose_shape", lambda fragments, patterns: shape)
    on_spark = merge_profiles(lake.inputs(), policy, query, engine="spark", temp_dir=str(tmp_path / "spark"))
    assert _snapshot(on_spark) == _snapshot(duck)
    assert list((tmp_path / "spark").iterdir()) == []


def test_spark_in_parts_gives_the_duckdb_rows(spark, lake, tmp_path):
    test_lookup._lake(lake)
    query = ExportQuery(include_events=True, empty_profiles=True)
    duck = merge_profiles(lake.inputs(), PDG, query)
    parted = merge_profiles(lake.inputs(), PDG, query, engine="spark", temp_dir=str(tmp_path), memory_budget_bytes=1)
    assert _snapshot(parted) == _snapshot(duck)


# Hand-checked expectations, run as they are with UPSTACK_ENGINE=spark.
REPLAYED = [
    test_merge_policies.test_last_updated_date_beats_a_later_ingest_time,
    test_merge_policies.test_equal_timestamps_in_one_dataset_the_later_record_wins,
    test_merge_policies.test_upsert_keeps_only_the_latest_record_per_primary_identity_in_a_dataset,
    test_merge_policies.test_dataset_precedence_takes_the_highest_listed_dataset_and_ignores_unlisted_ones,
    test_identity_graph.test_pdg_stitches_a_chain_through_a_record_and_an_event,
    test_identity_graph.test_components_over_fifty_identities_are_excluded_and_counted,
    test_identity_graph.test_identity_map_keeps_authenticated_state_of_the_newest_record,
    test_identity_graph.test_pdg_links_through_a_dataset_the_precedence_order_leaves_out,
    test_identity_graph.test_identities_of_unlisted_datasets_count_toward_the_component_limit,
    test_identity_graph.test_events_reach_a_profile_through_an_unlisted_dataset,
    test_events.test_event_list_is_projected_and_ordered_by_timestamp_then_id,
    test_schema_drift.test_int_and_string_for_one_path_become_strings,
]


@pytest.mark.parametrize("test", REPLAYED, ids=lambda t: t.__name__)
def test_hand_checked_expectations_hold_on_spark(spark, test, tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTACK_ENGINE", "spark")
    (tmp_path / "lake").mkdir()
    args = {"lake": Lake(tmp_path / "lake"), "tmp_path": tmp_path}
    test(**{k: v for k, v in args.items() if k in inspect.signature(test).parameters})


def test_label_propagation_finds_scipys_components(spark, tmp_path):
    rng = np.random.default_rng(7)
    n = 400
    # Long chains (many rounds without pointer jumping), stars and random extra edges.
    a = np.r_[np.arange(0, 99), np.full(50, 150), rng.integers(200, n, 120)]
    b = np.r_[np.arange(1, 100), np.arange(100, 150), rng.integers(200, n, 120)]
    backend = spark_engine.SparkBackend("local[2]", work_dir=str(tmp_path))
    try:
        assert np.array_equal(backend.components(n, a, b), component_anchors(n, a, b))
    finally:
        backend.close()


def test_lookups_stay_on_duckdb_when_only_the_environment_asks_for_spark(lake, monkeypatch):
    test_lookup._lake(lake)
    monkeypatch.setenv("UPSTACK_ENGINE", "spark")
    monkeypatch.setattr(spark_engine, "SparkBackend", None)  # any use of Spark would fail
    found = merge_profiles(lake.inputs(), PDG, ExportQuery(identity=("ECID", "b1")))
    assert found.profiles.num_rows == 1


def test_a_null_ordering_key_is_skipped_on_both_engines(spark, tmp_path):
    """The SQL texts filter with a NULL ordering key instead of FILTER: max_by and max skip such rows on both
    engines, and give NULL when every row of a group has one."""
    import pyarrow as pa

    from upstack.profiles.merge import DuckDBBackend, identity_union_sql

    # Profile 0: the newest row states no authenticatedState, so the older one's wins; profile 1: none at all.
    rows = pa.table({"profile_idx": pa.array([0, 0, 1], pa.int64()), "node": pa.array([5, 5, 6], pa.int64()),
                     "auth": pa.array([1, None, None], pa.int32()), "rank": pa.array([1, 2, 3], pa.int64())})
    flags = pa.table({"profile_idx": pa.array([0, 0, 1], pa.int64()), "merge_rank": pa.array([1, 2, 3], pa.int64()),
                      "p0": pa.array([True, False, False])})
    answers = []
    for backend in (DuckDBBackend(), spark_engine.SparkBackend("local[2]", work_dir=str(tmp_path))):
        try:
            union = backend.query(identity_union_sql(), {"identity_rows": rows}).to_pylist(maps_as_pydicts="strict")
            won = backend.query(winners.leaf_winners_sql(["p0"]), {"fragments": flags}).to_pylist(maps_as_pydicts="strict")
        finally:
            backend.close()
        answers.append((union, won))
    assert answers[0] == answers[1]
    assert answers[0] == ([{"profile_idx": 0, "node": 5, "auth": 1}, {"profile_idx": 1, "node": 6, "auth": None}],
                          [{"profile_idx": 0, "p0": 1}, {"profile_idx": 1, "p0": None}])
