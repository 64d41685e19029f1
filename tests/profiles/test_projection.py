"""`fields` projection: subtrees, single leaves, identityMap always there, the legacy identities view."""

from tests.profiles.lakes import export, ids, rows

JAN1 = 1_704_067_200_000


def _person(lake):
    lake.batch("crm", [{
        "identityMap": ids(("ECID", "e1"), ("EMAIL", "a@x.com"), primary="e1"),
        "person": {"name": {"firstName": "Ann", "lastName": "Lee"}, "gender": "female"},
        "mobilePhone": {"number": "1-408-888-8888", "status": "active"},
        "segmentMembership": {"ups": {"s1": {"status": "realized"}}},
    }], ingest=JAN1)


IDENTITY_MAP = {"ECID": [{"id": "e1", "primary": True}], "EMAIL": [{"id": "a@x.com", "primary": False}]}


def test_a_path_selects_its_whole_subtree(lake):
    _person(lake)

    result = export(lake, fields=("person.name",))
    assert result.profiles.column_names == ["identityMap", "person"]
    assert rows(result) == [{"identityMap": IDENTITY_MAP, "person": {"name": {"firstName": "Ann", "lastName": "Lee"}}}]


def test_leaves_and_subtrees_combine(lake):
    _person(lake)

    assert rows(export(lake, fields=("person.name.firstName", "mobilePhone"))) == [{
        "identityMap": IDENTITY_MAP,
        "person": {"name": {"firstName": "Ann"}},
        "mobilePhone": {"number": "1-408-888-8888", "status": "active"},
    }]


def test_no_fields_means_everything(lake):
    _person(lake)

    assert rows(export(lake))[0]["segmentMembership"] == {"ups": {"s1": {"status": "realized"}}}
    assert export(lake).profiles.column_names == ["identityMap", "person", "mobilePhone", "segmentMembership"]


def test_unknown_paths_select_nothing_but_identity_map_stays(lake):
    _person(lake)

    assert rows(export(lake, fields=("workEmail",))) == [{"identityMap": IDENTITY_MAP}]


def test_identities_id_adds_the_legacy_view(lake):
    _person(lake)

    assert rows(export(lake, fields=("identities.id", "person.gender"))) == [{
        "identityMap": IDENTITY_MAP,
        "person": {"gender": "female"},
        "identities": [{"id": "e1", "namespace": {"code": "ECID"}, "primary": True},
                       {"id": "a@x.com", "namespace": {"code": "EMAIL"}, "primary": False}],
    }]


def test_an_object_with_only_null_leaves_is_absent(lake):
    lake.batch("crm", [{"identityMap": ids(("ECID", "e1")), "person": {"name": {"firstName": None}}},
                       {"identityMap": ids(("ECID", "e2")), "person": {"name": {"firstName": "Bob"}}}], ingest=JAN1)

    assert export(lake).profiles.column("person").to_pylist(maps_as_pydicts="strict") == [None, {"name": {"firstName": "Bob"}}]
