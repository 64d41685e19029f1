"""timestampOrdered and dataSetPrecedence on hand-checked fragments, plus upsert within a dataset."""

from tests.profiles.lakes import PDG, export, ids, rows
from upstack.profiles import MergePolicySpec

JAN1 = 1_704_067_200_000  # 2024-01-01T00:00:00Z in epoch ms
DAY = 86_400_000


def test_last_updated_date_beats_a_later_ingest_time(lake):
    # crm was ingested first but says its data was updated on Jan 10, after web's ingestion on Jan 2.
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")),
                        "person": {"name": {"firstName": "Ann", "lastName": "Lee"}},
                        "extSourceSystemAudit": {"lastUpdatedDate": "2024-01-10T00:00:00Z"}}], ingest=JAN1)
    lake.batch("web", [{"identityMap": ids(("ECID", "e1")),
                        "person": {"name": {"firstName": "Annie"}},
                        "homeAddress": {"city": "Paris"}}], ingest=JAN1 + DAY)

    assert rows(export(lake)) == [{
        "identityMap": {"ECID": [{"id": "e1", "primary": True}]},
        "person": {"name": {"firstName": "Ann", "lastName": "Lee"}},  # objects merge per key
        "extSourceSystemAudit": {"lastUpdatedDate": "2024-01-10T00:00:00Z"},
        "homeAddress": {"city": "Paris"},
    }]


def test_last_updated_date_older_than_the_other_ingest_time_loses(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")),
                        "person": {"name": {"firstName": "Ann", "lastName": "Lee"}},
                        "extSourceSystemAudit": {"lastUpdatedDate": "2023-06-01T00:00:00Z"}}], ingest=JAN1 + DAY)
    lake.batch("web", [{"identityMap": ids(("ECID", "e1")), "person": {"name": {"firstName": "Annie"}}}],
               ingest=JAN1)

    # web: no lastUpdatedDate, so its ingest time (Jan 1) counts, and Jan 1 2024 > Jun 1 2023.
    assert rows(export(lake))[0]["person"] == {"name": {"firstName": "Annie", "lastName": "Lee"}}


def test_arrays_are_whole_values_not_unions(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "interests": ["golf", "tennis"]}], ingest=JAN1)
    lake.batch("web", [{"identityMap": ids(("ECID", "e1")), "interests": ["chess"]}], ingest=JAN1 + DAY)

    assert rows(export(lake))[0]["interests"] == ["chess"]


def test_equal_timestamps_across_datasets_the_greater_dataset_id_wins(lake):
    lake.batch("dsA", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "female"}}], ingest=JAN1)
    lake.batch("dsB", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "not_specified"}}], ingest=JAN1)

    assert rows(export(lake))[0]["person"] == {"gender": "not_specified"}


def test_equal_timestamps_in_one_dataset_the_later_record_wins(lake):
    # Two fragments of one stitched profile in one batch (different primary identities, so no upsert).
    lake.batch("crm", [
        {"identityMap": ids(("ECID", "e1"), ("EMAIL", "a@x.com"), primary="e1"), "person": {"gender": "female"}},
        {"identityMap": ids(("EMAIL", "a@x.com")), "person": {"gender": "male"}},
    ], ingest=JAN1)

    result = export(lake, PDG)
    assert rows(result)[0]["person"] == {"gender": "male"}
    assert result.meta.column("fragment_count").to_pylist(maps_as_pydicts="strict") == [2]


def test_upsert_keeps_only_the_latest_record_per_primary_identity_in_a_dataset(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"name": {"firstName": "Ann", "lastName": "Lee"}}},
                       {"identityMap": ids(("ECID", "e2")), "person": {"name": {"firstName": "Bob"}}},
                       {"identityMap": ids(("ECID", "e2")), "person": {"name": {"firstName": "Bobby"}}}],
               ingest=JAN1)
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"name": {"firstName": "Annie"}}}],
               ingest=JAN1 + DAY)

    result = export(lake)
    # The replaced record is gone as a whole: its lastName does not survive under the newer record.
    assert [r["person"] for r in rows(result)] == [{"name": {"firstName": "Annie"}},
                                                    {"name": {"firstName": "Bobby"}}]
    assert result.meta.column("fragment_count").to_pylist(maps_as_pydicts="strict") == [1, 1]
    assert result.fragments_read == 4


def test_upsert_follows_record_order_not_last_updated_date(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "female"},
                        "extSourceSystemAudit": {"lastUpdatedDate": "2030-01-01T00:00:00Z"}}], ingest=JAN1)
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "male"}}], ingest=JAN1 + DAY)

    assert rows(export(lake))[0]["person"] == {"gender": "male"}


def test_dataset_precedence_takes_the_highest_listed_dataset_and_ignores_unlisted_ones(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"name": {"firstName": "Ann"}}}],
               ingest=JAN1)
    lake.batch("loyalty", [{"identityMap": ids(("ECID", "e1")),
                            "person": {"name": {"firstName": "Annie", "lastName": "Lee"}},
                            "loyalty": {"tier": "gold"}}], ingest=JAN1 + DAY)
    # web is newest and links a second identity, but it is not in `order`: none of its attributes count.
    lake.batch("web", [{"identityMap": ids(("ECID", "e1"), ("EMAIL", "w@x.com"), primary="e1"),
                        "person": {"name": {"firstName": "Web"}}, "homeAddress": {"city": "Rome"}}],
               ingest=JAN1 + 2 * DAY)

    # Under `pdg` its identities are still in the graph (CONTRACT §6), so EMAIL w@x.com is in the profile's
    # identityMap; under `none` there is no graph and web is not read at all.
    linked = {"pdg": {"EMAIL": [{"id": "w@x.com", "primary": False}]}, "none": {}}
    for graph in ("none", "pdg"):
        policy = MergePolicySpec(identity_graph=graph, attribute_merge="dataSetPrecedence", order=("crm", "loyalty"))
        result = export(lake, policy)
        assert rows(result) == [{
            "identityMap": {"ECID": [{"id": "e1", "primary": True}], **linked[graph]},
            "person": {"name": {"firstName": "Ann", "lastName": "Lee"}},
            "loyalty": {"tier": "gold"},
        }]
        assert result.meta.column("sources").to_pylist(maps_as_pydicts="strict") == [["crm", "loyalty"]]
        assert result.meta.column("fragment_count").to_pylist(maps_as_pydicts="strict") == [2]
        assert result.fragments_read == 2  # records of merged datasets only


def test_dataset_precedence_inside_one_dataset_orders_by_timestamp(lake):
    policy = MergePolicySpec(identity_graph="pdg", attribute_merge="dataSetPrecedence", order=("crm",))
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1"), ("EMAIL", "a@x.com"), primary="e1"),
                        "person": {"gender": "female"},
                        "extSourceSystemAudit": {"lastUpdatedDate": "2024-02-01T00:00:00Z"}}], ingest=JAN1)
    lake.batch("crm", [{"identityMap": ids(("EMAIL", "a@x.com")), "person": {"gender": "male"}}],
               ingest=JAN1 + DAY)

    assert rows(export(lake, policy))[0]["person"] == {"gender": "female"}


def test_merge_metadata_lists_sources_and_last_ingest(lake):
    lake.batch("web", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "female"}}], ingest=JAN1 + DAY)
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1"), ("EMAIL", "a@x.com"))}], ingest=JAN1)

    meta = export(lake).meta.to_pylist(maps_as_pydicts="strict")
    assert [{k: m[k] for k in ("entity_ns", "entity_id", "sources", "last_modified_ms")} for m in meta] == [
        {"entity_ns": "ECID", "entity_id": "e1", "sources": ["crm", "web"], "last_modified_ms": JAN1 + DAY}]
