"""Profile Access through HTTP (CONTRACT §9): one profile, the same merge an export writes, and its events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.profile_data import (
    ENTITIES,
    JOBS,
    PROFILE,
    Loader,
    clean,
    create_dataset,
    idmap,
    load_world,
    read_batch,
    union_dataset,
)

EVENTS = {"schema.name": "_xdm.context.experienceevent", "relatedSchema.name": "_xdm.context.profile"}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000)


@pytest.fixture
def world(client, ctx, run_jobs):
    return load_world(client, ctx, run_jobs)


def lookup(client, ns, ident, status=200, **params):
    r = client.get(ENTITIES, params={**PROFILE, "entityIdNS": ns, "entityId": ident, **params})
    assert r.status_code == status, r.text
    return r.json()


def events(client, ns, ident, status=200, **params):
    r = client.get(ENTITIES, params={**EVENTS, "relatedEntityIdNS": ns, "relatedEntityId": ident, **params})
    assert r.status_code == status, r.text
    return r.json()


def ups_error(body, status):
    assert body["status"] == status and body["errors"][str(status)][0]["code"].endswith(f"-{status}")


def test_profile_equals_the_exported_row(client, ctx, run_jobs, world):
    answer = lookup(client, "Email", "ann@x.com", mergePolicyId=world["pdg"])
    ((pid, found),) = answer.items()
    assert found["entityId"] == "ann@x.com"
    assert sorted(found["sources"]) == sorted([world["crm"], world["loyalty"]])
    entity = found["entity"]
    assert entity["person"]["name"] == {"firstName": "Annie", "lastName": "Lee"}
    assert entity["mobilePhone"] == {"number": "555-0100"}
    assert datetime.fromisoformat(found["lastModifiedAt"].replace("Z", "+00:00"))
    # any identity of the stitched profile finds the same profile
    via_ecid = lookup(client, "ECID", "e1", mergePolicyId=world["pdg"])
    assert list(via_ecid) == [pid] and via_ecid[pid]["entityId"] == "e1"
    assert via_ecid[pid]["entity"] == entity

    target = union_dataset(client)
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"},
                                "mergePolicy": {"id": world["pdg"]}})
    assert r.status_code == 200
    run_jobs()
    job = client.get(f"{JOBS}/{r.json()['id']}").json()
    assert job["status"] == "SUCCEEDED"
    from upstack.services.entities import json_safe

    exported = [json_safe(row) for row in read_batch(client, ctx, job["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict")]
    ann = [row for row in exported if "Email" in row["identityMap"]
           and row["identityMap"]["Email"][0]["id"] == "ann@x.com"]
    assert ann == [entity]


def test_default_policy_fields_and_errors(client, world):
    ((_, found),) = lookup(client, "Email", "ann@x.com").items()  # default: no stitching
    assert found["entity"]["person"]["name"] == {"firstName": "Ann", "lastName": "Lee"}
    assert found["sources"] == [world["crm"]]
    ((_, found),) = lookup(client, "Email", "bob@x.com", fields="person.name.firstName").items()
    assert set(found["entity"]) == {"identityMap", "person"}
    assert found["entity"]["person"] == {"name": {"firstName": "Bob"}}
    assert found["entity"]["identityMap"] == {"Email": [{"id": "bob@x.com", "primary": True}]}

    ups_error(lookup(client, "Email", "nobody@x.com", status=404), 404)
    ups_error(lookup(client, "Email", "ann@x.com", status=400, mergePolicyId="nope"), 400)
    ups_error(lookup(client, "Email", "ann@x.com", status=400, fields="person..name"), 400)
    for params in ({"entityId": "ann@x.com"}, {**PROFILE, "entityId": "ann@x.com"},
                   {"schema.name": "_xdm.context.account", "entityId": "x", "entityIdNS": "Email"}):
        r = client.get(ENTITIES, params=params)
        assert r.status_code == 400, r.text
        ups_error(r.json(), 400)
    other = {"x-gw-ims-org-id": "OTHER@AdobeOrg"}
    r = client.get(ENTITIES, params={**PROFILE, "entityIdNS": "Email", "entityId": "ann@x.com"}, headers=other)
    assert r.status_code == 404


def test_events_order_window_and_paging(client, world):
    page = events(client, "ECID", "e1")
    assert page["_page"] == {"orderby": "timestamp", "start": "ev2", "count": 2, "next": ""}
    assert page["_links"] == {"next": {"href": ""}}
    first, second = page["children"]
    assert first["relatedEntityId"] == "e1" and first["entityId"] == "ev2"
    assert first["timestamp"] == ms("2024-03-01T10:00:00Z")
    assert first["entity"]["environment"]["browserDetails"] == {"name": "Chrome", "version": "119"}
    assert first["entity"]["timestamp"] == "2024-03-01T10:00:00.000Z"
    assert second["entityId"] == "ev1"

    desc = events(client, "ECID", "e1", orderby="-timestamp")
    assert [c["entityId"] for c in desc["children"]] == ["ev1", "ev2"]
    assert [c["entityId"] for c in events(client, "ECID", "e1", startTime=ms("2024-03-01T12:00:00Z"))["children"]] \
        == ["ev1"]
    # endTime is exclusive
    assert [c["entityId"] for c in events(client, "ECID", "e1", endTime=ms("2024-03-02T10:00:00Z"))["children"]] \
        == ["ev2"]

    one = events(client, "ECID", "e1", limit=1)
    assert [c["entityId"] for c in one["children"]] == ["ev2"] and one["_page"]["next"] == "ev1"
    href = one["_links"]["next"]["href"]
    assert href.startswith(ENTITIES + "?") and "start=ev1" in href
    rest = client.get(href).json()
    assert [c["entityId"] for c in rest["children"]] == ["ev1"] and rest["_links"]["next"]["href"] == ""
    down = events(client, "ECID", "e1", limit=1, orderby="-timestamp")
    assert [c["entityId"] for c in client.get(down["_links"]["next"]["href"]).json()["children"]] == ["ev2"]

    # under pdg the profile's events are those of its whole identity graph
    stitched = events(client, "Email", "ann@x.com", mergePolicyId=world["pdg"], fields="environment")
    assert [c["entityId"] for c in stitched["children"]] == ["ev2", "ev1"]
    assert set(stitched["children"][0]["entity"]) == {"_id", "timestamp", "environment"}
    # a known identity without events has an empty page; an unknown one is 404
    assert events(client, "Email", "bob@x.com")["children"] == []
    ups_error(events(client, "ECID", "e404", status=404), 404)
    r = client.get(ENTITIES, params={**EVENTS, "relatedEntityId": "e1"})
    assert r.status_code == 400
    ups_error(events(client, "ECID", "e1", status=400, orderby="name"), 400)


def test_oversized_identity_graph(client, ctx, run_jobs):
    """58 identities stitched by pdg: not exported (counted), and a lookup answers 422."""
    ds = create_dataset(client, "devices")
    chain = []
    for r in range(3):  # each record: 20 identities (the most allowed), sharing one with the previous record
        ids = [("Phone", f"+4100{r}{k:02d}") for k in range(19)]
        link = ("Email", f"hub{r}@x.com")
        prev = ("Email", f"hub{r - 1}@x.com") if r else ("Email", "start@x.com")
        chain.append({"identityMap": idmap(prev, link, *ids[:18]), "person": {"name": {"firstName": f"R{r}"}}})
    small = {"identityMap": idmap(("Email", "solo@x.com")), "person": {"name": {"firstName": "Solo"}}}
    Loader(client, ctx, run_jobs).ingest(ds, chain + [small])
    pdg = client.post("/data/core/ups/config/mergePolicies", json={
        "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "timestampOrdered"}}).json()["id"]

    ups_error(lookup(client, "Email", "hub1@x.com", status=422, mergePolicyId=pdg), 422)
    assert lookup(client, "Email", "hub1@x.com")  # without stitching it is a small profile
    assert lookup(client, "Email", "solo@x.com", mergePolicyId=pdg)

    target = union_dataset(client)
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"},
                                "mergePolicy": {"id": pdg}})
    run_jobs()
    job = client.get(f"{JOBS}/{r.json()['id']}").json()
    assert job["status"] == "SUCCEEDED"
    assert job["metrics"]["totalExportedProfileCounter"] == 1 and job["metrics"]["excludedComponentCounter"] == 1
    rows = clean(read_batch(client, ctx, job["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict"))
    assert [row["person"]["name"]["firstName"] for row in rows] == ["Solo"]


def test_pdg_under_dataset_precedence_links_through_unlisted_datasets(client, ctx, run_jobs):
    """CONTRACT §6: crm is not in `order`, so none of its attributes count, but its record still joins loyalty's
    two fragments into one profile, which lists every identity of the group."""
    load = Loader(client, ctx, run_jobs)
    crm, loyalty = create_dataset(client, "crm"), create_dataset(client, "loyalty")
    load.ingest(crm, [{"identityMap": idmap(("CRMID", "c9"), ("Email", "zed@x.com")),
                       "person": {"name": {"firstName": "Zed"}}}])
    load.ingest(loyalty, [{"identityMap": idmap(("Email", "zed@x.com")), "loyalty": {"tier": "gold"}}])
    load.ingest(loyalty, [{"identityMap": idmap(("CRMID", "c9"), ("Phone", "42"), primary="42")}])
    r = client.post("/data/core/ups/config/mergePolicies", json={
        "name": "loyalty first", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": [loyalty]}})
    assert r.status_code == 200, r.text
    policy = r.json()["id"]

    answers = [lookup(client, ns, ident, mergePolicyId=policy)
               for ns, ident in (("CRMID", "c9"), ("Email", "zed@x.com"), ("Phone", "42"))]
    assert len({pid for a in answers for pid in a}) == 1  # one profile, whichever identity asks
    ((_, found),) = answers[0].items()
    entity = found["entity"]
    assert {ns: [i["id"] for i in items] for ns, items in entity["identityMap"].items()} == {
        "CRMID": ["c9"], "Email": ["zed@x.com"], "Phone": ["42"]}
    assert entity["loyalty"] == {"tier": "gold"} and "person" not in entity
    assert found["sources"] == [loyalty]

    target = union_dataset(client)
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"},
                                "mergePolicy": {"id": policy}})
    assert r.status_code == 200, r.text
    run_jobs()
    job = client.get(f"{JOBS}/{r.json()['id']}").json()
    assert job["status"] == "SUCCEEDED"
    assert job["metrics"]["totalExportedProfileCounter"] == 1
    from upstack.services.entities import json_safe

    assert [json_safe(row) for row in read_batch(client, ctx, job["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict")] == [entity]


def test_several_entities_in_one_post(client, world):
    body = {"schema": {"name": "_xdm.context.profile"}, "fields": ["person.name"], "mergePolicyId": world["pdg"],
            "identities": [{"entityId": "ann@x.com", "entityIdNS": {"code": "Email"}},
                           {"entityId": "e1", "entityIdNS": {"code": "ECID"}},  # Ann again, through her browser
                           {"entityId": "bob@x.com", "entityIdNS": "Email"},
                           {"entityId": "nobody", "entityIdNS": {"code": "Email"}}]}
    r = client.post(ENTITIES, json=body)
    assert r.status_code == 200, r.text
    names = sorted(v["entity"]["person"]["name"]["firstName"] for v in r.json().values())
    assert names == ["Annie", "Bob"]
    assert client.post(ENTITIES, json=dict(body, identities=body["identities"][3:])).status_code == 404
    for broken in ({**body, "identities": []}, {**body, "schema": {"name": "_xdm.context.account"}},
                   {**body, "identities": [{"entityId": 1}]}):
        r = client.post(ENTITIES, json=broken)
        assert r.status_code == 400, r.text
        ups_error(r.json(), 400)


GET_MESSAGES = [
    ({}, "Missing required query parameter(s): schema.name."),
    ({**PROFILE, "entityId": "ann@x.com"}, "Missing required query parameter(s): entityIdNS."),
    ({**PROFILE, "entityId": " ", "entityIdNS": ""}, "Missing required query parameter(s): entityId, entityIdNS."),
    ({"schema.name": "_xdm.context.experienceevent"},
     "Missing required query parameter(s): relatedSchema.name, relatedEntityId, relatedEntityIdNS."),
    ({**EVENTS, "relatedSchema.name": "x", "relatedEntityId": "e1", "relatedEntityIdNS": "ECID"},
     "'relatedSchema.name' must be '_xdm.context.profile', got 'x'."),
    ({"schema.name": "_xdm.context.account", "entityId": "x", "entityIdNS": "Email"},
     "'schema.name' must be '_xdm.context.profile' or '_xdm.context.experienceevent', got '_xdm.context.account'."),
    ({**PROFILE, "entityId": "ann@x.com", "entityIdNS": "Email", "fields": "person..name"},
     "'fields' has a malformed field path 'person..name': use dot paths like 'person.name.firstName', separated "
     "by commas."),
    ({**EVENTS, "relatedEntityId": "e1", "relatedEntityIdNS": "ECID", "limit": "abc"},
     "Query parameter 'limit' must be a number of epoch milliseconds, got 'abc'."),
    ({**EVENTS, "relatedEntityId": "e1", "relatedEntityIdNS": "ECID", "startTime": "nan"},
     "Query parameter 'startTime' must be a number of epoch milliseconds, got 'nan'."),
    ({**EVENTS, "relatedEntityId": "e1", "relatedEntityIdNS": "ECID", "orderby": "name"},
     "'orderby' must be 'timestamp' or '-timestamp', got 'name'."),
]
DELETE_MESSAGES = [
    ({}, "Missing required query parameter(s): schema.name."),
    ({"schema.name": "_xdm.context.experienceevent"},
     "'schema.name' must be '_xdm.context.profile' to delete a profile, got '_xdm.context.experienceevent'."),
    (PROFILE, "Missing required query parameter(s): entityId, entityIdNS."),
]
ONE = [{"entityId": "ann@x.com", "entityIdNS": {"code": "Email"}}]
POST_MESSAGES = [
    (["x"], "Request body must be a JSON object."),
    ({"schema": {"name": "_xdm.context.account"}, "identities": ONE},
     "'schema.name' must be '_xdm.context.profile' (several entities are looked up for profiles only)."),
    ({"identities": ONE}, "'schema.name' must be '_xdm.context.profile' (several entities are looked up for "
     "profiles only)."),
    ({"schema": {"name": "_xdm.context.profile"}, "identities": []},
     "'identities' must be an array of 1 to 100 {entityId, entityIdNS}."),
    ({"schema": {"name": "_xdm.context.profile"}, "identities": ONE * 101},
     "'identities' must be an array of 1 to 100 {entityId, entityIdNS}."),
    ({"schema": {"name": "_xdm.context.profile"}, "identities": [ONE[0], {"entityId": 1}]},
     "'identities[1]' needs a string 'entityId' and 'entityIdNS': {\"code\": \"...\"}."),
    ({"schema": {"name": "_xdm.context.profile"}, "identities": ["x"]},
     "'identities[0]' needs a string 'entityId' and 'entityIdNS': {\"code\": \"...\"}."),
    ({"schema": {"name": "_xdm.context.profile"}, "identities": ONE, "fields": 5},
     "'fields' must be a comma-separated string of dot paths."),
    ({"schema": {"name": "_xdm.context.profile"}, "identities": ONE, "fields": ["person..x"]},
     "'fields' has a malformed field path 'person..x': use dot paths like 'person.name.firstName', separated by "
     "commas."),
    ({"schema": {"name": "_xdm.context.profile"}, "identities": ONE, "mergePolicyId": 5},
     "'mergePolicyId' must be a string."),
]


def _message(r) -> str:
    assert r.status_code == 400, r.text
    ups_error(r.json(), 400)
    return r.json()["errors"]["400"][0]["message"]


def test_common_mistakes_keep_their_messages(client, world):
    for params, message in GET_MESSAGES:
        assert _message(client.get(ENTITIES, params=params)) == message, params
    for params, message in DELETE_MESSAGES:
        assert _message(client.delete(ENTITIES, params=params)) == message, params
    for body, message in POST_MESSAGES:
        assert _message(client.post(ENTITIES, json=body)) == message, body
    # The event-only parameters are not read for a profile: malformed, they are still ignored there.
    assert lookup(client, "Email", "ann@x.com", limit="abc", orderby="name", startTime="x")


def test_answers_validate_against_the_declared_models(client, world):
    """What /openapi.json declares (schemas/entities.py) is what the routes serve."""
    from upstack.schemas.entities import ProfileAnswer, ProfileEntityMap, ProfileEventsPage

    one = client.get(ENTITIES, params={**PROFILE, "entityIdNS": "Email", "entityId": "ann@x.com"}).json()
    assert ProfileEntityMap.model_validate(one).root and ProfileAnswer.model_validate(one)
    page = events(client, "ECID", "e1", limit=1)
    assert ProfileEventsPage.model_validate(page).page.next == "ev1"
    assert isinstance(ProfileAnswer.model_validate(page).root, ProfileEventsPage)
    body = {"schema": {"name": "_xdm.context.profile"}, "mergePolicyId": world["pdg"],
            "identities": [{"entityId": "ann@x.com", "entityIdNS": {"code": "Email"}},
                           {"entityId": "bob@x.com", "entityIdNS": {"code": "Email"}}]}
    r = client.post(ENTITIES, json=body)
    assert r.status_code == 200 and len(ProfileEntityMap.model_validate(r.json()).root) == 2


def test_hostile_requests_are_400(client, world):
    """Oversized, wrongly typed or deep members are the family's 400, never a 500 or a merge of them."""
    base = {"schema": {"name": "_xdm.context.profile"}, "identities": ONE}
    for change in ({"fields": "a" * 100_001}, {"fields": ["a"] * 100_001}, {"mergePolicyId": "m" * 2000},
                   {"identities": [{"entityId": "x" * 2000, "entityIdNS": {"code": "Email"}}]},
                   {"identities": [{"entityId": "x", "entityIdNS": {"code": 5}}]},
                   {"timeFilter": {"startTime": "yesterday"}}, {"limit": "ten"}, {"schema": "profile"},
                   {"identities": {"entityId": "x"}}):
        r = client.post(ENTITIES, json={**base, **change})
        assert r.status_code == 400, (change, r.text)
        ups_error(r.json(), 400)
    deep: dict = {}
    for _ in range(200):
        deep = {"x": deep}
    r = client.post(ENTITIES, json={**base, "extra": deep})
    assert r.status_code == 400, r.text
    for params in ({**PROFILE, "entityIdNS": "Email", "entityId": "x" * 5000},
                   {**PROFILE, "entityIdNS": "E" * 5000, "entityId": "ann@x.com"}):
        r = client.get(ENTITIES, params=params)
        assert r.status_code == 400, r.text
        ups_error(r.json(), 400)
