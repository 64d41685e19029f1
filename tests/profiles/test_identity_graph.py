"""Identity graphs: `none` keys profiles by primary identity, `pdg` by connected component; the size guard."""

from datetime import UTC, datetime

import pytest

from tests.profiles.lakes import PDG, export, ids, rows
from upstack.profiles import ComponentTooLarge, MergePolicySpec, profile_events

JAN1 = 1_704_067_200_000
DAY = 86_400_000
# Attributes from loyalty only; crm is left out of `order` but still feeds the graph (CONTRACT §6).
LOYALTY_ONLY = MergePolicySpec(identity_graph="pdg", attribute_merge="dataSetPrecedence", order=("loyalty",))


def _chain_lake(lake):
    """ECID a1 and EMAIL b@x.com share a crm record; EMAIL b@x.com and PHONE 555 share only an event."""
    lake.batch("crm", [{"identityMap": ids(("ECID", "a1"), ("EMAIL", "b@x.com"), primary="a1"),
                        "person": {"name": {"firstName": "Ann"}}}], ingest=JAN1)
    lake.batch("loyalty", [{"identityMap": ids(("PHONE", "555")), "loyalty": {"tier": "gold"}}], ingest=JAN1 + DAY)
    lake.events("clicks", [{"_id": "ev1", "timestamp": "2024-01-03T10:00:00Z",
                            "identityMap": ids(("EMAIL", "b@x.com"), ("PHONE", "555"))}], ingest=JAN1 + 2 * DAY)


def test_none_keeps_one_profile_per_primary_identity(lake):
    _chain_lake(lake)

    result = export(lake, include_events=True)
    assert rows(result) == [
        {"identityMap": {"ECID": [{"id": "a1", "primary": True}], "EMAIL": [{"id": "b@x.com", "primary": False}]},
         "person": {"name": {"firstName": "Ann"}}, "eventList": []},
        {"identityMap": {"PHONE": [{"id": "555", "primary": True}]}, "loyalty": {"tier": "gold"}, "eventList": []},
    ]
    # The event's primary identity (EMAIL b@x.com, first namespace) has no fragment: an empty profile.
    with_empty = rows(export(lake, include_events=True, event_fields=("_id",), empty_profiles=True))
    assert with_empty[1] == {"identityMap": {"EMAIL": [{"id": "b@x.com", "primary": True}]},
                             "eventList": [{"_id": "ev1", "timestamp": datetime(2024, 1, 3, 10, tzinfo=UTC)}]}


def test_pdg_stitches_a_chain_through_a_record_and_an_event(lake):
    _chain_lake(lake)

    result = export(lake, PDG, include_events=True, event_fields=("_id",))
    [profile] = rows(result)
    assert profile["identityMap"] == {
        "ECID": [{"id": "a1", "primary": False}],
        "EMAIL": [{"id": "b@x.com", "primary": False}],
        "PHONE": [{"id": "555", "primary": True}],  # the primary identity of the newest fragment (loyalty)
    }
    assert profile["person"] == {"name": {"firstName": "Ann"}}
    assert profile["loyalty"] == {"tier": "gold"}
    assert [e["_id"] for e in profile["eventList"]] == ["ev1"]
    meta = result.meta.to_pylist(maps_as_pydicts="strict")[0]
    assert (meta["entity_ns"], meta["entity_id"], meta["sources"]) == ("PHONE", "555", ["crm", "loyalty"])
    assert result.by_namespace == {"ECID": 1, "EMAIL": 1, "PHONE": 1}


def test_identity_map_keeps_authenticated_state_of_the_newest_record(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1"), auth={"e1": "ambiguous"})}], ingest=JAN1)
    lake.batch("web", [{"identityMap": ids(("ECID", "e1"), auth={"e1": "authenticated"})}], ingest=JAN1 + DAY)
    lake.batch("app", [{"identityMap": ids(("ECID", "e1"))}], ingest=JAN1 + 2 * DAY)

    assert rows(export(lake))[0]["identityMap"] == {
        "ECID": [{"id": "e1", "primary": True, "authenticatedState": "authenticated"}]}


def _chain(prefix: str, size: int) -> list[dict]:
    """Records linking ECID <prefix>0 - <prefix>1 - ... - <prefix>{size-1} into one component."""
    return [{"identityMap": ids(("ECID", f"{prefix}{i:02d}"), ("ECID", f"{prefix}{i + 1:02d}")),
             "person": {"gender": "female"}} for i in range(size - 1)]


def test_components_over_fifty_identities_are_excluded_and_counted(lake):
    lake.batch("crm", _chain("big", 51) + _chain("ok", 50), ingest=JAN1)

    result = export(lake, PDG)
    assert result.excluded_components == 1
    [profile] = rows(result)
    assert [i["id"] for i in profile["identityMap"]["ECID"]] == [f"ok{i:02d}" for i in range(50)]

    assert export(lake, PDG, max_component_identities=51).profiles.num_rows == 2


def test_lookup_in_an_oversized_component_raises(lake):
    lake.batch("crm", _chain("big", 51), ingest=JAN1)

    with pytest.raises(ComponentTooLarge):
        export(lake, PDG, identity=("ECID", "big07"))
    assert export(lake, PDG, identity=("ECID", "big07"), max_component_identities=60).profiles.num_rows == 1


def test_none_does_not_link_secondary_identities(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1"), ("EMAIL", "a@x.com"), primary="e1")},
                       {"identityMap": ids(("EMAIL", "a@x.com"))}], ingest=JAN1)

    assert len(rows(export(lake))) == 2
    assert len(rows(export(lake, PDG))) == 1


def _linked_by_an_unlisted_dataset(lake):
    """loyalty's two fragments share no identity; only crm's record, a dataset LOYALTY_ONLY leaves out of
    `order`, holds CRMID c9 and EMAIL zed@x.com together."""
    lake.batch("crm", [{"identityMap": ids(("CRMID", "c9"), ("EMAIL", "zed@x.com"), primary="c9"),
                        "person": {"name": {"firstName": "Zed"}}}], ingest=JAN1)
    lake.batch("loyalty", [{"identityMap": ids(("EMAIL", "zed@x.com"), primary="zed@x.com"),
                            "loyalty": {"tier": "gold"}}], ingest=JAN1 + DAY)
    lake.batch("loyalty", [{"identityMap": ids(("CRMID", "c9"), ("PHONE", "42"), primary="42")}],
               ingest=JAN1 + 2 * DAY)


def test_pdg_links_through_a_dataset_the_precedence_order_leaves_out(lake):
    _linked_by_an_unlisted_dataset(lake)

    result = export(lake, LOYALTY_ONLY)
    expected = {
        "identityMap": {
            "CRMID": [{"id": "c9", "primary": False}],
            "EMAIL": [{"id": "zed@x.com", "primary": False}],
            "PHONE": [{"id": "42", "primary": True}],  # primary identity of the newest loyalty fragment
        },
        "loyalty": {"tier": "gold"},  # and no person.name.firstName: crm's attributes do not count
    }
    assert rows(result) == [expected]
    assert "person" not in result.profiles.column_names  # crm's columns do not shape the output either
    meta = result.meta.to_pylist(maps_as_pydicts="strict")[0]
    assert (meta["entity_ns"], meta["entity_id"], meta["sources"], meta["fragment_count"]) == (
        "PHONE", "42", ["loyalty"], 2)
    assert result.fragments_read == 2  # crm is read for its identities only
    assert result.by_namespace == {"CRMID": 1, "EMAIL": 1, "PHONE": 1}
    for identity in (("CRMID", "c9"), ("EMAIL", "zed@x.com"), ("PHONE", "42")):
        found = export(lake, LOYALTY_ONLY, identity=identity)
        assert rows(found) == [expected]
        assert found.meta.column("profile_id").to_pylist(maps_as_pydicts="strict") == [meta["profile_id"]]


def test_under_precedence_events_link_and_unlisted_only_components_are_no_profile(lake):
    lake.batch("crm", [{"identityMap": ids(("CRMID", "c1")), "person": {"name": {"firstName": "Cy"}}}], ingest=JAN1)
    lake.batch("loyalty", [{"identityMap": ids(("EMAIL", "a@x.com")), "loyalty": {"tier": "silver"}},
                           {"identityMap": ids(("PHONE", "77")), "loyalty": {"points": 5}}], ingest=JAN1)
    lake.events("clicks", [{"_id": "ev1", "timestamp": "2024-01-03T10:00:00Z",
                            "identityMap": ids(("EMAIL", "a@x.com"), ("PHONE", "77"))}], ingest=JAN1 + DAY)

    result = export(lake, LOYALTY_ONLY, empty_profiles=True)
    [profile] = rows(result)  # crm's component has no loyalty fragment (and no event): not a profile
    assert sorted(profile["identityMap"]) == ["EMAIL", "PHONE"]
    assert profile["loyalty"] == {"tier": "silver", "points": 5}
    assert export(lake, LOYALTY_ONLY, identity=("CRMID", "c1")).profiles.num_rows == 0


def test_identities_of_unlisted_datasets_count_toward_the_component_limit(lake):
    lake.batch("loyalty", [{"identityMap": ids(("ECID", "big00")), "loyalty": {"tier": "gold"}}], ingest=JAN1)
    lake.batch("crm", _chain("big", 51), ingest=JAN1)

    result = export(lake, LOYALTY_ONLY)
    assert result.profiles.num_rows == 0 and result.excluded_components == 1
    with pytest.raises(ComponentTooLarge):
        export(lake, LOYALTY_ONLY, identity=("ECID", "big00"))


def test_events_reach_a_profile_through_an_unlisted_dataset(lake):
    # The web event names only ECID w1, which only crm (unlisted) joins to loyalty's CRMID c9.
    lake.batch("crm", [{"identityMap": ids(("CRMID", "c9"), ("ECID", "w1"), primary="c9")}], ingest=JAN1)
    lake.batch("loyalty", [{"identityMap": ids(("CRMID", "c9")), "loyalty": {"tier": "gold"}}], ingest=JAN1)
    lake.events("clicks", [{"_id": "ev1", "timestamp": "2024-01-03T10:00:00Z", "identityMap": ids(("ECID", "w1"))}],
                ingest=JAN1 + DAY)

    [profile] = rows(export(lake, LOYALTY_ONLY, include_events=True, event_fields=("_id",)))
    assert [e["_id"] for e in profile["eventList"]] == ["ev1"]
    assert sorted(profile["identityMap"]) == ["CRMID", "ECID"]
    listed = profile_events(lake.inputs(), LOYALTY_ONLY, ("CRMID", "c9"), fields=("_id",))
    assert listed.column("entity_id").to_pylist(maps_as_pydicts="strict") == ["ev1"]
