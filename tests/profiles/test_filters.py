"""Export filters: segment status and qualification time, fromIngestTimestamp, empty profiles, split by segment."""

from tests.profiles.lakes import PDG, export, ids, rows
from upstack.profiles import SegmentFilter, split_by_segment

JAN1 = 1_704_067_200_000
DAY = 86_400_000


def _member(status: str, qualified: str | None = None) -> dict:
    return {"status": status, "lastQualificationTime": qualified}


def _segmented(lake):
    lake.batch("crm", [
        {"identityMap": ids(("ECID", "p1")), "segmentMembership": {"ups": {"s1": _member("realized", "2024-01-10T00:00:00Z")}}},
        {"identityMap": ids(("ECID", "p2")), "segmentMembership": {"ups": {"s1": _member("exited", "2024-01-10T00:00:00Z")}}},
        {"identityMap": ids(("ECID", "p3")), "segmentMembership": {"ups": {"s1": _member("existing", "2024-03-01T00:00:00Z")}}},
        {"identityMap": ids(("ECID", "p4")), "segmentMembership": {"ups": {"s2": _member("realized")}}},
        {"identityMap": ids(("ECID", "p5"))},
    ], ingest=JAN1)


def _exported(result) -> list[str]:
    return result.meta.column("entity_id").to_pylist(maps_as_pydicts="strict")


def test_segment_filter_keeps_realized_and_existing_by_default(lake):
    _segmented(lake)

    assert _exported(export(lake, segments=(SegmentFilter("s1"),))) == ["p1", "p3"]
    assert _exported(export(lake, segments=(SegmentFilter("s1", statuses=("exited",)),))) == ["p2"]
    assert _exported(export(lake, segments=(SegmentFilter("s1", segment_ns="aam"),))) == []


def test_several_segments_keep_profiles_in_any_of_them(lake):
    _segmented(lake)

    assert _exported(export(lake, segments=(SegmentFilter("s1", statuses=("realized",)), SegmentFilter("s2")))) == [
        "p1", "p4"]


def test_qualification_time_bounds_are_inclusive(lake):
    _segmented(lake)
    jan10 = JAN1 + 9 * DAY

    assert _exported(export(lake, segments=(SegmentFilter("s1"),), segment_qualification_start_ms=JAN1,
                            segment_qualification_end_ms=jan10)) == ["p1"]
    assert _exported(export(lake, segments=(SegmentFilter("s1"),), segment_qualification_start_ms=jan10 + 1)) == ["p3"]
    # p4 never qualified at a known time, so a time bound excludes it.
    assert _exported(export(lake, segments=(SegmentFilter("s2"),), segment_qualification_start_ms=0)) == []


def test_segment_membership_merges_like_any_attribute(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "p1")), "segmentMembership": {"ups": {"s1": _member("realized")}}}],
               ingest=JAN1)
    lake.batch("seg", [{"identityMap": ids(("ECID", "p1")), "segmentMembership": {"ups": {"s1": _member("exited")}}}],
               ingest=JAN1 + DAY)

    assert _exported(export(lake, segments=(SegmentFilter("s1"),))) == []


def test_segment_keys_and_split_by_segment(lake):
    _segmented(lake)

    result = export(lake)
    assert result.meta.column("segment_keys").to_pylist(maps_as_pydicts="strict")[0] == [
        {"ns": "ups", "id": "s1", "status": "realized", "last_qualification_ms": JAN1 + 9 * DAY}]
    s1 = split_by_segment(result, SegmentFilter("s1"))
    assert [r["identityMap"]["ECID"][0]["id"] for r in s1.to_pylist(maps_as_pydicts="strict")] == ["p1", "p3"]
    assert split_by_segment(result, SegmentFilter("s9")).num_rows == 0


def test_from_ingest_keeps_profiles_updated_at_or_after_it(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "old"))}, {"identityMap": ids(("ECID", "new"))}], ingest=JAN1)
    lake.batch("web", [{"identityMap": ids(("ECID", "new"))}], ingest=JAN1 + 2 * DAY)

    assert _exported(export(lake, from_ingest_ms=JAN1 + DAY)) == ["new"]
    assert _exported(export(lake, from_ingest_ms=JAN1 + 2 * DAY)) == ["new"]
    assert _exported(export(lake, from_ingest_ms=JAN1)) == ["new", "old"]


def test_profiles_made_only_of_events_need_empty_profiles(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "female"}}], ingest=JAN1)
    lake.events("web", [{"_id": "ev1", "timestamp": "2024-01-02T00:00:00Z", "identityMap": ids(("ECID", "z9"))}],
                ingest=JAN1 + DAY)

    for policy in (None, PDG):
        assert _exported(export(lake, policy)) == ["e1"]
        result = export(lake, policy, empty_profiles=True, include_events=True, event_fields=())
        assert _exported(result) == ["e1", "z9"]
        empty = rows(result)[1]
        assert empty["identityMap"] == {"ECID": [{"id": "z9", "primary": True}]}
        assert [e["_id"] for e in empty["eventList"]] == ["ev1"]
        assert set(empty) == {"identityMap", "eventList"}
        meta = result.meta.to_pylist(maps_as_pydicts="strict")[1]
        assert (meta["sources"], meta["last_modified_ms"], meta["fragment_count"]) == ([], JAN1 + DAY, 0)
