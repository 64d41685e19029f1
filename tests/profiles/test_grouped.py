"""Exports split by identity-graph component (profiles/grouped.py): each group merged alone gives exactly the
rows of a whole-lake merge, in group order rather than anchor order."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.profiles.lakes import clean
from tests.profiles.test_partitions import HAND_CHECKED, TINY
from tests.profiles.test_properties import POLICIES, QUERY, _records, _write, lakes
from upstack.profiles import ExportQuery, MergePolicySpec, iter_merge_profiles, merge_profiles
from upstack.profiles import engine as engine_module
from upstack.profiles.components import files_occurrences, number_nodes, union
from upstack.profiles.grouped import group_of


def components_of(inputs) -> dict[str, np.ndarray]:
    """Every record's component from scratch, as the profile store would have it (one union of all files)."""
    paths = [p for d in inputs for p in d.files]
    sizes, occ = files_occurrences(paths)
    update = union(sum(sizes), occ, number_nodes(occ), {}, 1)
    cuts = np.cumsum([0, *sizes])
    return {p: update.record_component[cuts[i]:cuts[i + 1]] for i, p in enumerate(paths)}


def _by_profile(result):
    """Rows sorted by profile id: a grouped export's row order is per group."""
    rows = sorted(zip(result.meta.to_pylist(maps_as_pydicts="strict"),
                      clean(result.profiles.to_pylist(maps_as_pydicts="strict")), strict=True),
                  key=lambda r: r[0]["profile_id"])
    return rows, result.by_namespace, (result.excluded_components, result.fragments_read, result.events_read)


@pytest.fixture
def grouped_runs(monkeypatch):
    """How many exports took the grouped path."""
    calls = []
    real = engine_module.grouped_export

    def spy(*args, **kwargs):
        calls.append(args[2])  # groups
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "grouped_export", spy)
    return calls


def _same_grouped(inputs, policy, query, tmp: Path, components=None):
    whole = merge_profiles(inputs, policy, query)
    comps = components if components is not None else components_of(inputs)
    grouped = merge_profiles(inputs, policy, query, temp_dir=str(tmp), memory_budget_bytes=TINY,
                             components=lambda: comps)
    assert _by_profile(grouped) == _by_profile(whole)
    assert grouped.profiles.schema == whole.profiles.schema
    assert list(tmp.iterdir()) == []  # the copies are gone
    return whole


@pytest.mark.parametrize("build, policy, query", [h for h in HAND_CHECKED if h[2].identity is None])
def test_hand_checked_lakes_merge_the_same_by_component(lake, tmp_path, grouped_runs, build, policy, query):
    build(lake)
    whole = _same_grouped(lake.inputs(), policy, query, tmp_path / "tmp")
    assert whole.profiles.num_rows > 0 and grouped_runs and grouped_runs[0] > 1


def test_joining_more_than_the_graph_is_safe(lake, tmp_path, grouped_runs):
    """The store may join components the graph keeps apart (records not indexed yet, upserted records): the
    answer is the same."""
    from tests.profiles import test_lookup

    test_lookup._lake(lake)
    comps = {p: np.where(c >= 0, 7, c) for p, c in components_of(lake.inputs()).items()}
    _same_grouped(lake.inputs(), MergePolicySpec(identity_graph="pdg"), ExportQuery(include_events=True,
                                                                                   empty_profiles=True),
                  tmp_path / "tmp", comps)
    assert grouped_runs


def test_without_components_for_every_file_the_whole_lake_is_stitched(lake, tmp_path, grouped_runs):
    from tests.profiles import test_lookup

    test_lookup._lake(lake)
    comps = components_of(lake.inputs())
    comps.pop(next(iter(comps)))
    query = ExportQuery(include_events=True, empty_profiles=True)
    for provided in (comps, None):
        parts = list(iter_merge_profiles(lake.inputs(), MergePolicySpec(identity_graph="pdg"), query,
                                         temp_dir=str(tmp_path), memory_budget_bytes=TINY,
                                         components=lambda provided=provided: provided))
        assert [p.part for p in parts] == list(range(len(parts))) and parts[-1].parts == len(parts)
    assert not grouped_runs


def test_parts_are_numbered_and_the_last_carries_the_totals(lake, tmp_path):
    from tests.profiles import test_lookup

    test_lookup._lake(lake)
    query = ExportQuery(include_events=True, empty_profiles=True)
    comps = components_of(lake.inputs())
    parts = list(iter_merge_profiles(lake.inputs(), MergePolicySpec(identity_graph="pdg"), query,
                                     temp_dir=str(tmp_path), memory_budget_bytes=TINY, components=lambda: comps))
    assert [p.part for p in parts] == list(range(len(parts)))
    assert [p.parts == p.part + 1 for p in parts] == [False] * (len(parts) - 1) + [True]
    assert (parts[-1].fragments_read, parts[-1].events_read) == (3, 2)


def test_small_exports_never_ask_for_components(lake):
    from tests.profiles import test_lookup

    test_lookup._lake(lake)

    def refuse():
        raise AssertionError("a one-part export asked for components")

    merge_profiles(lake.inputs(), MergePolicySpec(identity_graph="pdg"), ExportQuery(), components=refuse)


def test_groups_spread_records_and_keep_components_whole():
    comps = np.r_[np.arange(100_000), np.full(10, 5), np.full(10, -1)]
    g = group_of(comps, 8)
    counts = np.bincount(g, minlength=8)
    assert counts.min() > 0.9 * counts.mean()
    assert len(set(g[comps == 5].tolist())) == 1  # one component, one group
    assert len(set(g[comps == -1].tolist())) > 1  # records without identities go anywhere


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lakes())
def test_any_lake_merges_the_same_by_component(data):
    frags, events, order, rnd = data
    profile_rows, event_rows = _records(frags, events, order)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as spill:
        inputs = _write(Path(a), profile_rows, event_rows, scattered=True, rnd=rnd)
        for policy in POLICIES:
            _same_grouped(inputs, policy, QUERY, Path(spill))
