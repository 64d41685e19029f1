"""Bounded memory: a merge in many parts (tiny budget, temp files), with identities numbered by an external
sort or in memory, gives exactly the single-part rows."""

import inspect
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.profiles import (
    test_events,
    test_filters,
    test_identity_graph,
    test_lookup,
    test_merge_policies,
    test_projection,
    test_schema_drift,
)
from tests.profiles.lakes import PDG, Lake, clean
from tests.profiles.test_properties import POLICIES, QUERY, _records, _write, lakes
from upstack.profiles import ExportQuery, MergePolicySpec, SegmentFilter, iter_merge_profiles, merge_profiles
from upstack.profiles.partition import parse_bytes, part_bounds, resolve_budget

TINY = 1  # bytes: every export is split into as many parts as it has profiles


def _snapshot(result):
    return clean(result.profiles.to_pylist(maps_as_pydicts="strict")), result.meta.to_pylist(maps_as_pydicts="strict"), result.by_namespace, (
        result.excluded_components, result.fragments_read, result.events_read)


# (budget, spill_identities): a tiny budget spills identities unless told not to; a single part can have
# them spilled too (its texts then come from the node text file like a part's).
VARIANTS = [(TINY, None), (TINY, False), (None, True)]


def _same_in_parts(inputs, policy, query, tmp: Path):
    whole = merge_profiles(inputs, policy, query, spill_identities=False)
    for budget, spilled in VARIANTS:
        parted = merge_profiles(inputs, policy, query, temp_dir=str(tmp), memory_budget_bytes=budget,
                                spill_identities=spilled)
        assert _snapshot(parted) == _snapshot(whole), (budget, spilled)
        assert parted.profiles.schema == whole.profiles.schema
        assert list(tmp.iterdir()) == []  # the temp files are gone
    return whole


HAND_CHECKED = [
    (test_identity_graph._chain_lake, PDG, ExportQuery(include_events=True, empty_profiles=True)),
    (test_identity_graph._chain_lake, MergePolicySpec(), ExportQuery(include_events=True, empty_profiles=True)),
    (test_lookup._lake, PDG, ExportQuery(include_events=True, fields=("person", "loyalty", "identities"))),
    (test_lookup._lake, MergePolicySpec(), ExportQuery(include_events=True, empty_profiles=True)),
    (test_lookup._lake, PDG, ExportQuery(identity=("EMAIL", "a@x.com"), include_events=True)),
    (test_events._web_events, PDG, ExportQuery(include_events=True, event_fields=("web.webPageDetails.name",))),
    (test_events._web_events, PDG, ExportQuery(include_events=True, event_from_ingest_ms=test_events.JAN1 + 1)),
    (test_filters._segmented, PDG, ExportQuery(segments=(SegmentFilter("s1"),))),
    (test_filters._segmented, MergePolicySpec(), ExportQuery(from_ingest_ms=test_filters.JAN1)),
    (test_identity_graph._linked_by_an_unlisted_dataset, test_identity_graph.LOYALTY_ONLY,
     ExportQuery(empty_profiles=True)),
]

# Every hand-checked test of the engine, run again with a budget that forces one part per profile.
REPLAYED = [
    pytest.param(fn, id=f"{mod.__name__.rsplit('.', 1)[-1]}.{name}")
    for mod in (test_merge_policies, test_identity_graph, test_lookup, test_events, test_filters, test_projection,
                test_schema_drift)
    for name, fn in vars(mod).items()
    if name.startswith("test_") and callable(fn) and set(inspect.signature(fn).parameters) <= {"lake", "tmp_path"}
]


@pytest.mark.parametrize("test", REPLAYED)
def test_hand_checked_expectations_hold_in_parts(test, tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTACK_ENGINE_MEMORY_BUDGET", "1")
    args = {"lake": Lake(tmp_path / "lake"), "tmp_path": tmp_path / "tmp"}
    (tmp_path / "lake").mkdir()
    (tmp_path / "tmp").mkdir()
    test(**{k: v for k, v in args.items() if k in inspect.signature(test).parameters})


@pytest.mark.parametrize("build, policy, query", HAND_CHECKED)
def test_hand_checked_lakes_merge_the_same_in_parts(lake, tmp_path, build, policy, query):
    build(lake)
    whole = _same_in_parts(lake.inputs(), policy, query, tmp_path / "spill")
    assert whole.profiles.num_rows > 0


def test_parts_stream_in_row_order_with_whole_export_counters(lake, tmp_path):
    test_lookup._lake(lake)
    query = ExportQuery(include_events=True, empty_profiles=True)
    parts = list(iter_merge_profiles(lake.inputs(), PDG, query, temp_dir=str(tmp_path), memory_budget_bytes=TINY))
    assert [p.part for p in parts] == list(range(len(parts)))
    assert len(parts) == parts[0].parts > 1
    assert {p.events_read for p in parts} == {2} and {p.fragments_read for p in parts} == {3}
    whole = merge_profiles(lake.inputs(), PDG, query)
    assert [r for p in parts for r in p.meta.column("profile_id").to_pylist(maps_as_pydicts="strict")] == whole.meta.column(
        "profile_id").to_pylist(maps_as_pydicts="strict")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lakes())
def test_any_lake_merges_the_same_in_parts(data):
    frags, events, order, rnd = data
    profile_rows, event_rows = _records(frags, events, order)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as spill:
        inputs = _write(Path(a), profile_rows, event_rows, scattered=True, rnd=rnd)
        for policy in POLICIES:
            _same_in_parts(inputs, policy, QUERY, Path(spill))


@pytest.mark.parametrize("build, policy, query", HAND_CHECKED[:4])
def test_spilled_identities_stream_in_tiny_batches(lake, tmp_path, monkeypatch, build, policy, query):
    """Namespaces and repeated ids spanning batches of the text-ordered stream and groups of the node text
    file number and route exactly as in one batch."""
    from upstack.profiles import textsort

    build(lake)
    whole = merge_profiles(lake.inputs(), policy, query, spill_identities=False)
    monkeypatch.setattr(textsort, "TEXT_ROWS_PER_GROUP", 1)
    parted = merge_profiles(lake.inputs(), policy, query, temp_dir=str(tmp_path / "spill"),
                            memory_budget_bytes=TINY, spill_identities=True)
    assert _snapshot(parted) == _snapshot(whole)


def test_identities_spill_when_their_text_outgrows_the_budget(lake):
    from upstack.profiles.load import Selector, file_set
    from upstack.profiles.partition import TEXT_WORKING_SET_FACTOR, wants_spilled_identities

    test_identity_graph._chain_lake(lake)
    fs = file_set(lake.inputs(), "profile", Selector(None), skip_identity_map_leaves=True)
    text = fs.identity_text_bytes()
    assert text > 0
    assert wants_spilled_identities(text, text * TEXT_WORKING_SET_FACTOR - 1)
    assert not wants_spilled_identities(text, text * TEXT_WORKING_SET_FACTOR)


def test_budget_comes_from_the_memory_limit_unless_given():
    assert parse_bytes("2GB") == 2_000_000_000 and parse_bytes("512MiB") == 512 * 2**20
    assert resolve_budget(123, "2GB") == 123
    assert resolve_budget(None, "2GB") == 1_500_000_000
    assert resolve_budget(None, None) > 0


def test_part_bounds_are_contiguous_and_balanced_by_fragments():
    import numpy as np

    frag_row = np.repeat(np.arange(10), [1, 1, 1, 1, 1, 1, 1, 1, 1, 11])
    bounds = part_bounds(frag_row, None, 10, 2)
    assert bounds[0][0] == 0 and bounds[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert bounds == [(0, 7), (7, 10)]  # weights 2 x 7 = 14 | 2 + 2 + 12 = 16


def test_engine_comes_from_the_environment_unless_given(monkeypatch):
    from upstack.profiles.engines import engine_name

    monkeypatch.delenv("UPSTACK_ENGINE", raising=False)
    assert engine_name() == "duckdb"
    monkeypatch.setenv("UPSTACK_ENGINE", "Spark")
    assert engine_name() == "spark" and engine_name("duckdb") == "duckdb"
    with pytest.raises(ValueError):
        engine_name("polars")
