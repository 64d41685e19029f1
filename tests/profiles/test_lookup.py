"""Profile lookups run the export code path restricted to one profile; cancellation checkpoints."""

import pytest

from tests.profiles.lakes import PDG, clean, export, ids
from upstack.profiles import ExportCancelled, ExportQuery, MergePolicySpec, merge_profiles

JAN1 = 1_704_067_200_000
DAY = 86_400_000


def _lake(lake):
    lake.batch("crm", [
        {"identityMap": ids(("ECID", "a1"), ("EMAIL", "a@x.com"), primary="a1"), "person": {"gender": "female"}},
        {"identityMap": ids(("ECID", "b1")), "person": {"gender": "male"}, "loyalty": {"tier": "gold"}},
    ], ingest=JAN1)
    lake.batch("web", [{"identityMap": ids(("EMAIL", "a@x.com")), "person": {"name": {"firstName": "Ann"}}}],
               ingest=JAN1 + DAY)
    lake.events("clicks", [{"_id": "ev1", "timestamp": "2024-01-03T00:00:00Z",
                            "identityMap": ids(("ECID", "b1"), ("PHONE", "555"))},
                           {"_id": "ev2", "timestamp": "2024-01-04T00:00:00Z", "identityMap": ids(("PHONE", "777"))}],
                ingest=JAN1 + 2 * DAY)


def _identities(profile_row: dict) -> list[tuple[str, str]]:
    return [(ns, item["id"]) for ns, items in profile_row["identityMap"].items() for item in items]


@pytest.mark.parametrize("graph", ["none", "pdg"])
def test_lookup_of_each_identity_equals_its_export_row(lake, graph):
    _lake(lake)
    policy = MergePolicySpec(identity_graph=graph)
    query = dict(include_events=True, empty_profiles=True, fields=("person", "loyalty", "identities"))
    exported = export(lake, policy, **query)
    exported_rows = clean(exported.profiles.to_pylist(maps_as_pydicts="strict"))
    by_id = dict(zip(exported.meta.column("profile_id").to_pylist(maps_as_pydicts="strict"), exported_rows, strict=True))

    looked_up = 0
    for identity in [i for row in exported_rows for i in _identities(row)]:
        found = export(lake, policy, identity=identity, **query)
        assert found.profiles.num_rows == 1, identity
        meta = found.meta.to_pylist(maps_as_pydicts="strict")[0]
        assert (meta["entity_ns"], meta["entity_id"]) == identity
        assert clean(found.profiles.to_pylist(maps_as_pydicts="strict")[0]) == by_id[meta["profile_id"]]
        looked_up += 1
    assert looked_up == 5  # none: a1, a@x.com (twice: also a profile key), b1, 777; pdg: a1, a@x.com, b1, 555, 777


def test_lookup_under_none_ignores_secondary_identities_of_events(lake):
    _lake(lake)

    # PHONE 555 only appears next to ECID b1 on an event; without stitching it belongs to no profile.
    assert export(lake, identity=("PHONE", "555")).profiles.num_rows == 0
    assert export(lake, PDG, identity=("PHONE", "555")).meta.column("sources").to_pylist(maps_as_pydicts="strict") == [["crm"]]


def test_lookup_of_an_unknown_identity_is_empty(lake):
    _lake(lake)

    assert export(lake, PDG, identity=("ECID", "zzz")).profiles.num_rows == 0
    assert export(lake, PDG, identity=("NOPE", "a1")).profiles.num_rows == 0


def test_lookup_of_an_event_only_identity_returns_the_empty_profile(lake):
    _lake(lake)

    found = export(lake, identity=("PHONE", "777"))
    assert clean(found.profiles.to_pylist(maps_as_pydicts="strict")) == [{"identityMap": {"PHONE": [{"id": "777", "primary": True}]}}]


def test_cancel_stops_at_the_next_checkpoint(lake):
    _lake(lake)
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(ExportCancelled):
        merge_profiles(lake.inputs(), PDG, ExportQuery(include_events=True), should_cancel=should_cancel)
    assert len(calls) == 3

    done = merge_profiles(lake.inputs(), PDG, ExportQuery(include_events=True), should_cancel=lambda: False)
    assert done.profiles.num_rows == 2


def test_own_duckdb_with_spill_directory_and_memory_limit_gives_the_same_rows(lake, tmp_path):
    _lake(lake)
    query = ExportQuery(include_events=True, empty_profiles=True)

    limited = merge_profiles(lake.inputs(), PDG, query, temp_dir=str(tmp_path / "spill"), memory_limit="256MB")
    assert clean(limited.profiles.to_pylist(maps_as_pydicts="strict")) == clean(merge_profiles(lake.inputs(), PDG, query).profiles.to_pylist(maps_as_pydicts="strict"))
