"""Events: ingest-time window, field projection, ordering, and the profile-access event listing."""

from datetime import UTC, datetime

from tests.profiles.lakes import PDG, export, ids, rows
from upstack.profiles import profile_events

JAN1 = 1_704_067_200_000
DAY = 86_400_000


def _web_events(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "female"}}], ingest=JAN1)
    lake.events("web", [
        {"_id": "ev-b", "timestamp": "2024-01-05T12:00:00Z", "identityMap": ids(("ECID", "e1")),
         "web": {"webPageDetails": {"name": "Cart", "URL": "https://x.com/cart"}}},
        {"_id": "ev-a", "timestamp": "2024-01-05T12:00:00Z", "identityMap": ids(("ECID", "e1")),
         "web": {"webPageDetails": {"name": "Home", "URL": "https://x.com/"}}},
    ], ingest=JAN1 + DAY)
    # A second file stores timestamp as a real timestamp type instead of RFC 3339 text.
    lake.events("web", [
        {"_id": "ev-c", "timestamp": datetime(2024, 1, 4, 8, tzinfo=UTC), "identityMap": ids(("ECID", "e1")),
         "web": {"webPageDetails": {"name": "Search"}}},
    ], ingest=JAN1 + 3 * DAY)


def test_event_list_is_projected_and_ordered_by_timestamp_then_id(lake):
    _web_events(lake)

    [profile] = rows(export(lake, include_events=True, event_fields=("web.webPageDetails.name",)))
    assert profile["eventList"] == [
        {"_id": "ev-c", "timestamp": datetime(2024, 1, 4, 8, tzinfo=UTC), "web": {"webPageDetails": {"name": "Search"}}},
        {"_id": "ev-a", "timestamp": datetime(2024, 1, 5, 12, tzinfo=UTC), "web": {"webPageDetails": {"name": "Home"}}},
        {"_id": "ev-b", "timestamp": datetime(2024, 1, 5, 12, tzinfo=UTC), "web": {"webPageDetails": {"name": "Cart"}}},
    ]


def test_event_ingest_window_is_inclusive(lake):
    _web_events(lake)

    def ids_between(lo, hi):
        [p] = rows(export(lake, include_events=True, event_fields=(), event_from_ingest_ms=lo, event_to_ingest_ms=hi))
        return [e["_id"] for e in p["eventList"]]

    assert ids_between(JAN1 + DAY, JAN1 + DAY) == ["ev-a", "ev-b"]
    assert ids_between(JAN1 + DAY + 1, None) == ["ev-c"]
    assert ids_between(None, JAN1) == []


def test_all_event_fields_by_default(lake):
    _web_events(lake)

    [profile] = rows(export(lake, include_events=True))
    assert profile["eventList"][1] == {
        "_id": "ev-a", "timestamp": datetime(2024, 1, 5, 12, tzinfo=UTC),
        "identityMap": {"ECID": [{"id": "e1"}]},
        "web": {"webPageDetails": {"name": "Home", "URL": "https://x.com/"}},
    }


def test_events_are_not_loaded_into_profiles_without_include_events(lake):
    _web_events(lake)

    result = export(lake)
    assert "eventList" not in result.profiles.column_names
    assert result.events_read == 0


def test_profile_events_lists_a_profiles_events_by_event_time(lake):
    _web_events(lake)
    inputs = lake.inputs()

    table = profile_events(inputs, PDG, ("ECID", "e1"), fields=("web.webPageDetails.name",))
    assert table.column_names == ["entity_id", "timestamp_ms", "entity"]
    assert table.column("entity_id").to_pylist(maps_as_pydicts="strict") == ["ev-c", "ev-a", "ev-b"]
    assert table.column("entity").to_pylist(maps_as_pydicts="strict")[0] == {
        "_id": "ev-c", "timestamp": datetime(2024, 1, 4, 8, tzinfo=UTC), "web": {"webPageDetails": {"name": "Search"}}}

    newest_first = profile_events(inputs, PDG, ("ECID", "e1"), descending=True, limit=2)
    assert newest_first.column("entity_id").to_pylist(maps_as_pydicts="strict") == ["ev-b", "ev-a"]

    jan5 = 1_704_412_800_000  # 2024-01-05T00:00:00Z
    assert profile_events(inputs, PDG, ("ECID", "e1"), start_ms=jan5).column("entity_id").to_pylist(maps_as_pydicts="strict") == ["ev-a", "ev-b"]
    assert profile_events(inputs, PDG, ("ECID", "nobody")).num_rows == 0
