"""Files of one dataset (or of several) that disagree on columns or types still merge."""

from datetime import UTC, datetime

import pyarrow as pa

from tests.profiles.lakes import export, ids, rows

JAN1 = 1_704_067_200_000
DAY = 86_400_000


def test_column_missing_in_one_file(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "loyalty": {"points": 100, "tier": "gold"}}], ingest=JAN1)
    lake.batch("crm", [{"identityMap": ids(("ECID", "e2")), "person": {"gender": "male"}}], ingest=JAN1 + DAY)

    assert rows(export(lake)) == [
        {"identityMap": {"ECID": [{"id": "e1", "primary": True}]}, "loyalty": {"points": 100, "tier": "gold"}},
        {"identityMap": {"ECID": [{"id": "e2", "primary": True}]}, "person": {"gender": "male"}},
    ]


def test_int_and_string_for_one_path_become_strings(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "loyalty": {"points": 100}},
                       {"identityMap": ids(("ECID", "e2")), "loyalty": {"points": 7}}], ingest=JAN1)
    lake.batch("pos", [{"identityMap": ids(("ECID", "e2")), "loyalty": {"points": "12 (pending)"}}], ingest=JAN1 + DAY)

    result = export(lake)
    assert result.profiles.schema.field("loyalty").type == pa.struct([("points", pa.string())])
    assert [r["loyalty"] for r in rows(result)] == [{"points": "100"}, {"points": "12 (pending)"}]


def test_int_and_float_promote_to_float(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "loyalty": {"points": 100}}], ingest=JAN1)
    lake.batch("pos", [{"identityMap": ids(("ECID", "e2")), "loyalty": {"points": 2.5}}], ingest=JAN1)

    assert [r["loyalty"]["points"] for r in rows(export(lake))] == [100.0, 2.5]


def test_object_in_one_file_and_text_in_another(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "homeAddress": "1 Main St"}], ingest=JAN1)
    lake.batch("web", [{"identityMap": ids(("ECID", "e2")), "homeAddress": {"city": "Paris"}}], ingest=JAN1)

    assert [r["homeAddress"] for r in rows(export(lake))] == ["1 Main St", '{"city":"Paris"}']


def test_last_updated_date_as_timestamp_type_or_text(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "female"},
                        "extSourceSystemAudit": {"lastUpdatedDate": datetime(2024, 1, 20, tzinfo=UTC)}}], ingest=JAN1)
    lake.batch("web", [{"identityMap": ids(("ECID", "e1")), "person": {"gender": "male"},
                        "extSourceSystemAudit": {"lastUpdatedDate": "2024-01-10T00:00:00+02:00"}}], ingest=JAN1 + DAY)

    [profile] = rows(export(lake))
    assert profile["person"] == {"gender": "female"}  # Jan 20 (timestamp column) beats Jan 10 (text)
    assert profile["extSourceSystemAudit"] == {"lastUpdatedDate": "2024-01-20T00:00:00.000000Z"}


def test_identity_items_with_different_members(lake):
    lake.batch("crm", [{"identityMap": {"ECID": [{"id": "e1", "primary": True}]}}], ingest=JAN1)
    lake.batch("web", [{"identityMap": {"ECID": [{"id": "e1", "authenticatedState": "loggedOut"}],
                                        "EMAIL": [{"id": "a@x.com"}]}}], ingest=JAN1 + DAY)

    assert rows(export(lake))[0]["identityMap"] == {
        "ECID": [{"id": "e1", "primary": True, "authenticatedState": "loggedOut"}],
        "EMAIL": [{"id": "a@x.com", "primary": False}],
    }
